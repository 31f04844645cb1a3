package host_test

import (
	"io/fs"
	"os"
	"path/filepath"
)

func walk(dir string, fn func(string, os.FileInfo)) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fn(path, info)
		return nil
	})
}
