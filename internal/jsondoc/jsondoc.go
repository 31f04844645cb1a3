// Package jsondoc keeps a small JSON document in a file that several
// processes may change: a read-modify-write runs under a lock file of its
// own, and the file is replaced atomically. It serves human-inputs.json and
// features.json.
package jsondoc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"

	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/jsonenc"
)

// Read decodes the document at path into v; a missing file leaves v as it
// is. A document that does not decode is an error naming the file, which
// is left untouched.
func Read(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is corrupt (%v); it was left as it is", path, err)
	}
	return nil
}

// Update reads the document at path into v under the lock file lockPath,
// calls fn, and writes v back durably when fn reports a change.
func Update(path, lockPath string, v any, fn func() (changed bool, err error)) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	lock := flock.New(lockPath)
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	defer lock.Unlock()
	if err := Read(path, v); err != nil {
		return err
	}
	changed, err := fn()
	if err != nil || !changed {
		return err
	}
	b, err := jsonenc.MarshalIndent(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}
