package host

// Mount grants the guest a host directory.
//
// The directory is served through os.Root: every path the guest uses is
// resolved inside it, symlinks that lead out of it (absolute, or relative
// with too many "..") are refused, and the guest can create neither
// symlinks nor hard links. Raw wazero directory mounts (and Extism's
// AllowedPaths, which uses them) follow symlinks out of the directory.
type Mount struct {
	// HostPath is the directory on the host.
	HostPath string
	// GuestPath is where the guest sees it; absolute.
	GuestPath string
	// ReadWrite allows writes; mounts are read-only otherwise.
	ReadWrite bool
}
