package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/pgstore"
)

// Bundle is what a worker on any machine needs to run a submitted
// workflow: its manifest and plugins, each a blob named by its sha256,
// at their paths relative to the manifest. Its own JSON is a blob too,
// whose name the queued runs carry.
type Bundle struct {
	Version int `json:"version"`
	// Manifest is the manifest's file name; Origin the absolute path it
	// was submitted from (for messages, and the directory path grants are
	// relative to when SharedPaths is set).
	Manifest string `json:"manifest"`
	Origin   string `json:"origin"`
	// Files maps each file's slash-separated path relative to the
	// manifest's directory (the manifest's own name included) to its
	// sha256.
	Files map[string]string `json:"files"`
	// SharedPaths: the steps' path grants name directories every worker
	// sees at the same place (a shared file system).
	SharedPaths bool `json:"shared_paths,omitempty"`
}

// ErrNotPortable is returned by NewBundle for a workflow that would not
// run the same on another machine.
var ErrNotPortable = errors.New("the workflow cannot run on another machine")

// NewBundle reads the files of the workflow m (loaded from its manifest
// file) and returns its bundle and blobs, the bundle's own last. Plugins
// must be named by paths relative to the manifest; steps granted host
// directories are refused unless sharedPaths says every worker sees them.
func NewBundle(m *manifest.Manifest, sharedPaths bool) (*Bundle, []pgstore.Blob, error) {
	if m.Path == "" {
		return nil, nil, fmt.Errorf("%w: it was built in code, not read from a manifest file", ErrNotPortable)
	}
	b := &Bundle{Version: 1, Manifest: filepath.Base(m.Path), Origin: m.Path, Files: map[string]string{}, SharedPaths: sharedPaths}
	var blobs []pgstore.Blob
	add := func(rel, file, kind string) error {
		body, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		blob := pgstore.Blob{Kind: kind, Body: body}
		if _, dup := b.Files[rel]; !dup {
			blobs = append(blobs, blob)
		}
		b.Files[rel] = blob.SHA256()
		return nil
	}
	if err := add(b.Manifest, m.Path, "manifest"); err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", m.Path, err)
	}
	for i := range m.Steps {
		s := &m.Steps[i]
		if filepath.IsAbs(s.Plugin) {
			return nil, nil, fmt.Errorf("%s: step %q: %w: its plugin %s is an absolute path; name it relative to the manifest",
				m.Path, s.ID, ErrNotPortable, s.Plugin)
		}
		if (len(s.Allow.Paths) > 0 || len(s.Allow.WritePaths) > 0) && !sharedPaths {
			return nil, nil, fmt.Errorf("%s: step %q: %w: it is granted host directories (allow.paths, allow.write_paths), which another machine may not have; submit with --shared-paths if every worker sees them at the same place",
				m.Path, s.ID, ErrNotPortable)
		}
		if err := add(cleanRel(s.Plugin), s.PluginPath, "plugin"); err != nil {
			return nil, nil, fmt.Errorf("%s: step %q: %w", m.Path, s.ID, err)
		}
	}
	body, err := jsonenc.Marshal(b)
	if err != nil {
		return nil, nil, err
	}
	return b, append(blobs, pgstore.Blob{Kind: "bundle", Body: body}), nil
}

// blobSource reads blobs by name, checked against it (pgstore.Store.Blob).
type blobSource interface {
	Blob(sha string) ([]byte, error)
}

// materialize lays bundle sha out under dir (once: a later call finds it)
// and loads its manifest. The manifest's directory sits deep enough in
// the bundle's that every plugin path leading out of it ("../x.wasm")
// still resolves inside.
func materialize(ctx context.Context, dir, sha string, blobs blobSource) (*manifest.Manifest, error) {
	raw, err := blobs.Blob(sha)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", short(sha), err)
	}
	var b Bundle
	if err := json.Unmarshal(raw, &b); err != nil || b.Version != 1 || b.Manifest == "" {
		return nil, fmt.Errorf("bundle %s: not a version 1 bundle (%v)", short(sha), err)
	}
	depth := 0
	for rel := range b.Files {
		if !validRel(rel) {
			return nil, fmt.Errorf("bundle %s: file path %q is not a clean relative path", short(sha), rel)
		}
		n := 0
		for _, part := range strings.Split(rel, "/") {
			if part != ".." {
				break
			}
			n++
		}
		depth = max(depth, n)
	}
	root := filepath.Join(dir, sha)
	mdir := filepath.Join(append([]string{root, "m"}, slices.Repeat([]string{"_"}, depth)...)...)
	mpath := filepath.Join(mdir, b.Manifest)
	if _, err := os.Stat(filepath.Join(root, "complete")); err != nil {
		if err := lay(ctx, root, mdir, &b, blobs); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", short(sha), err)
		}
	}
	mb, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", short(sha), err)
	}
	m, err := manifest.Parse(b.Origin, mpath, mb)
	if err != nil {
		return nil, err
	}
	if b.SharedPaths {
		// Path grants are relative to where the manifest was submitted
		// from, which every worker sees.
		m.Dir = filepath.Dir(b.Origin)
	}
	return m, nil
}

// cleanRel is a manifest's plugin path as a bundle names it.
func cleanRel(p string) string { return path.Clean(filepath.ToSlash(p)) }

// validRel reports whether rel is a clean, relative, slash-separated path
// with ".." only at its start.
func validRel(rel string) bool {
	if rel == "" || path.IsAbs(rel) || path.Clean(rel) != rel || strings.Contains(rel, "\\") {
		return false
	}
	rest := rel
	for strings.HasPrefix(rest, "../") {
		rest = rest[3:]
	}
	return rest != ".." && !strings.Contains("/"+rest+"/", "/../")
}

// lay writes a bundle's files into a directory of its own, then renames
// it into place, so that a worker killed midway leaves no half bundle.
func lay(ctx context.Context, root, mdir string, b *Bundle, blobs blobSource) error {
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), ".lay-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rel, _ := filepath.Rel(root, mdir)
	tmdir := filepath.Join(tmp, rel)
	written := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(b.Files)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		sha := b.Files[name]
		dst := filepath.Join(tmdir, filepath.FromSlash(name))
		if prev, ok := written[dst]; ok && prev != sha {
			return fmt.Errorf("files %s collide", name)
		}
		body, err := blobs.Blob(sha)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if (pgstore.Blob{Body: body}).SHA256() != sha {
			return fmt.Errorf("%s: its blob does not hash to %s", name, sha)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, body, 0o644); err != nil {
			return err
		}
		written[dst] = sha
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, root); err != nil {
		if _, serr := os.Stat(filepath.Join(root, "complete")); serr == nil {
			return nil // another worker laid it out first
		}
		return err
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
