//go:build windows

package host

import "github.com/tetratelabs/wazero"

// mountConfig refuses file grants on Windows: the os.Root-backed file
// system relies on Unix open flags and has not been tested there.
func mountConfig(mounts []Mount) (wazero.FSConfig, func(), error) {
	return nil, nil, callErr(ErrGrant, "file grants are not supported on Windows yet")
}
