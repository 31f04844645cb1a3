package host

import (
	"errors"

	"github.com/tetratelabs/wazero"
)

// Mount grants the guest a host directory.
type Mount struct {
	// HostPath is the directory on the host.
	HostPath string
	// GuestPath is where the guest sees it.
	GuestPath string
	// ReadWrite allows writes; mounts are read-only otherwise.
	ReadWrite bool
}

// mountConfig builds the FS configuration for mounts.
func mountConfig(mounts []Mount) (wazero.FSConfig, func(), error) {
	return nil, func() {}, errors.New("host: file grants are not supported yet")
}
