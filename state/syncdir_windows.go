//go:build windows

package state

// syncDir is a no-op on Windows: directories cannot be opened for fsync
// there, and NTFS journals renames itself.
func syncDir(string) error { return nil }
