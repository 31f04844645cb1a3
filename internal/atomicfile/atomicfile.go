// Package atomicfile replaces files so that a crash leaves the old or the
// new content, never a mix: the one way 12fa's stores rewrite a file.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data so that a crash leaves either the old or
// the new content: temp file in the same directory, fsync, rename, fsync of
// the directory.
func Write(path string, data []byte, perm os.FileMode) (err error) {
	return write(path, data, perm, true)
}

// WriteRelaxed replaces path with data like Write, but without the fsyncs:
// a reader never sees a mix of old and new, but a power cut may lose the
// new content. It is for files derived from the journal (checkpoint
// records), which must not add fsyncs to a step.
func WriteRelaxed(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, durable bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if durable {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", tmp, err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	if !durable {
		return nil
	}
	return SyncDir(dir)
}
