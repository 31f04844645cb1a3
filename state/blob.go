package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/layout"
)

// BlobsDir is the store's directory of content-addressed blobs: the large
// bodies of recorded host calls, each in a file named by its sha256.
const BlobsDir = layout.BlobsDir

// MaxInlineBytes is the largest host-call body a journal record holds
// itself; a larger one goes to a blob.
const MaxInlineBytes = 1 << 20

// ErrBlobCorrupt is returned by Blob for a blob whose bytes are not those
// its name hashes.
var ErrBlobCorrupt = errors.New("blob corrupt")

// PutBlob stores b durably (before it returns) and returns its sha256, in
// hex. Storing the same bytes twice keeps one file.
func (s *FileStore) PutBlob(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	name := hex.EncodeToString(sum[:])
	path := filepath.Join(s.cfg.Dir, BlobsDir, name)
	if _, err := os.Stat(path); err == nil {
		return name, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("blobs: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return "", fmt.Errorf("blob %s: %w", name, err)
	}
	return name, nil
}

// Blob returns the blob named sha (hex), checked against its name.
func (s *FileStore) Blob(sha string) ([]byte, error) {
	if len(sha) != 2*sha256.Size {
		return nil, fmt.Errorf("%w: bad blob name %q", ErrBlobCorrupt, sha)
	}
	if _, err := hex.DecodeString(sha); err != nil {
		return nil, fmt.Errorf("%w: bad blob name %q", ErrBlobCorrupt, sha)
	}
	path := filepath.Join(s.cfg.Dir, BlobsDir, sha)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s is missing: %w", path, err)
	}
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("%w: %s does not hash to its name", ErrBlobCorrupt, path)
	}
	return b, nil
}
