// Package checkpoint records a project's working tree as git commits that
// are on no branch ("shadow" commits under refs/12fa/<run>/<step>), with
// go-git's plumbing: the user's HEAD, index and branches are never touched,
// and no git binary is needed.
//
// A tree is built from the files on disk, honouring .gitignore files (an
// ignored directory is not even walked) and leaving out .git and .12fa. A
// stat cache (path, size, mtime, inode, mode → blob) means a file is read
// and hashed only when its stat changed, so a checkpoint of a large tree
// with one changed file costs a walk of stats, not a rehash.
//
// checkpoint knows nothing of runs' state: it is given a message and names.
// It imports go-git and internal/atomicfile only.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/layout"
)

// ErrNotRepo: the project is not in a git repository; git checkpoints are
// skipped.
var ErrNotRepo = errors.New("not a git repository")

// RefPrefix is where shadow commits are referenced.
const RefPrefix = "refs/12fa/"

// Git makes shadow commits of one working tree. Its methods are safe for
// concurrent use (they serialize).
type Git struct {
	mu        sync.Mutex
	repo      *git.Repository
	root      string
	cachePath string
	cache     map[string]statEntry
	dirty     bool
	// known holds objects seen in the store by this process, so that an
	// unchanged file or tree costs no lookup.
	known map[plumbing.Hash]bool
}

type statEntry struct {
	Size  int64  `json:"s"`
	MTime int64  `json:"m"`
	Ino   uint64 `json:"i"`
	Mode  uint32 `json:"o"`
	Hash  string `json:"h"`
}

// Open opens the repository containing dir. cachePath, when set, keeps the
// stat cache between processes.
func Open(dir, cachePath string) (*Git, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("checkpoint: %s: %w", dir, ErrNotRepo)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: open repository: %w", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	g := &Git{repo: repo, root: wt.Filesystem.Root(), cachePath: cachePath, cache: map[string]statEntry{},
		known: map[plumbing.Hash]bool{}}
	if cachePath != "" {
		if b, err := os.ReadFile(cachePath); err == nil {
			_ = json.Unmarshal(b, &g.cache) // a bad cache only costs rehashing
		}
	}
	return g, nil
}

// Root is the working tree's directory.
func (g *Git) Root() string { return g.root }

// Meta describes a checkpoint.
type Meta struct {
	// Ref is the name under RefPrefix, e.g. "<run>/<step>".
	Ref string
	// Message is the commit message; Trailers are appended as git trailers.
	Message  string
	Trailers map[string]string
	// Parent is the previous checkpoint's commit; empty: HEAD, if any.
	Parent string
	Time   time.Time
}

// Result is a checkpoint made.
type Result struct {
	Commit string
	Tree   string
	// Reused is set when the tree had not changed and the parent commit
	// was referenced again instead of an empty commit.
	Reused bool
	// Hashed counts the files read and hashed (the rest came from the stat
	// cache); Files counts every file in the tree.
	Hashed, Files int
}

// Checkpoint records the working tree and references it as RefPrefix+m.Ref.
func (g *Git) Checkpoint(m Meta) (Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var res Result
	tree, err := g.writeTree("", nil, &res)
	if err != nil {
		return res, fmt.Errorf("checkpoint: %w", err)
	}
	res.Tree = tree.String()
	var parents []plumbing.Hash
	parent := plumbing.ZeroHash
	if m.Parent != "" {
		parent = plumbing.NewHash(m.Parent)
	} else if head, err := g.repo.Head(); err == nil {
		parent = head.Hash()
	}
	if !parent.IsZero() {
		parents = append(parents, parent)
		if pc, err := g.repo.CommitObject(parent); err == nil && pc.TreeHash == tree && m.Parent != "" {
			res.Commit, res.Reused = parent.String(), true
			return res, g.setRef(m.Ref, parent)
		}
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	sig := object.Signature{Name: "12fa", Email: "12fa@localhost", When: m.Time}
	msg := commitMessage(m)
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: tree, ParentHashes: parents}
	obj := g.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return res, fmt.Errorf("checkpoint: encode commit: %w", err)
	}
	h, err := g.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return res, fmt.Errorf("checkpoint: store commit: %w", err)
	}
	res.Commit = h.String()
	return res, g.setRef(m.Ref, h)
}

func (g *Git) setRef(name string, h plumbing.Hash) error {
	if err := g.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(RefPrefix+name), h)); err != nil {
		return fmt.Errorf("checkpoint: set %s%s: %w", RefPrefix, name, err)
	}
	return nil
}

// SaveCache writes the stat cache, if it changed.
func (g *Git) SaveCache() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cachePath == "" || !g.dirty {
		return nil
	}
	b, err := json.Marshal(g.cache)
	if err != nil {
		return err
	}
	g.dirty = false
	return atomicfile.Write(g.cachePath, b, 0o644)
}

// Refs lists the shadow refs and their commits.
func (g *Git) Refs() (map[string]string, error) {
	it, err := g.repo.References()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	err = it.ForEach(func(r *plumbing.Reference) error {
		if n := r.Name().String(); strings.HasPrefix(n, RefPrefix) {
			out[strings.TrimPrefix(n, RefPrefix)] = r.Hash().String()
		}
		return nil
	})
	return out, err
}

// RemoveRefs deletes the shadow refs whose name (below RefPrefix) remove
// accepts, or every one when remove is nil; the objects go with git's gc.
func (g *Git) RemoveRefs(remove func(name string) bool) error {
	refs, err := g.Refs()
	if err != nil {
		return err
	}
	for name := range refs {
		if remove != nil && !remove(name) {
			continue
		}
		if err := g.repo.Storer.RemoveReference(plumbing.ReferenceName(RefPrefix + name)); err != nil {
			return err
		}
	}
	return nil
}

// skipped are never recorded: git's own directory and 12fa's store.
var skipped = map[string]bool{".git": true, layout.StoreDir: true}

// recorded returns the entries of directory rel (relative to the root) that
// a checkpoint records, and the ignore patterns in force below it: not .git
// or .12fa at the root, nothing ignored, and only directories, regular
// files and symlinks (a FIFO, socket or device is neither recorded nor ever
// removed by a restore). It is the one definition of the working tree that
// writeTree and listFiles walk.
func (g *Git) recorded(rel string, patterns []gitignore.Pattern) ([]fs.DirEntry, []gitignore.Pattern, error) {
	dir := filepath.Join(g.root, filepath.FromSlash(rel))
	domain := splitPath(rel)
	patterns = withIgnoreFile(dir, domain, patterns)
	matcher := gitignore.NewMatcher(patterns)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	kept := entries[:0]
	for _, e := range entries {
		name := e.Name()
		if rel == "" && skipped[name] {
			continue
		}
		if !e.IsDir() && !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if matcher.Match(append(domain, name), e.IsDir()) {
			continue
		}
		kept = append(kept, e)
	}
	return kept, patterns, nil
}

// writeTree writes the tree of directory rel (relative to the root) and
// returns its hash.
func (g *Git) writeTree(rel string, patterns []gitignore.Pattern, res *Result) (plumbing.Hash, error) {
	dir := filepath.Join(g.root, filepath.FromSlash(rel))
	entries, patterns, err := g.recorded(rel, patterns)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var tree object.Tree
	for _, e := range entries {
		name := e.Name()
		p := path.Join(rel, name)
		switch {
		case e.IsDir():
			h, err := g.writeTree(p, patterns, res)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if h == emptyTree {
				continue // git records no empty directories
			}
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		default:
			h, mode, hashed, err := g.blob(p, filepath.Join(dir, name))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed while we walked
				}
				return plumbing.ZeroHash, err
			}
			res.Files++
			if hashed {
				res.Hashed++
			}
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: mode, Hash: h})
		}
	}
	sort.Slice(tree.Entries, func(i, j int) bool { return treeKey(tree.Entries[i]) < treeKey(tree.Entries[j]) })
	obj := g.repo.Storer.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return g.store(obj)
}

// store writes obj unless the store has it already.
func (g *Git) store(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	h := obj.Hash()
	if g.has(h) {
		return h, nil
	}
	h, err := g.repo.Storer.SetEncodedObject(obj)
	if err == nil {
		g.known[h] = true
	}
	return h, err
}

func (g *Git) has(h plumbing.Hash) bool {
	if g.known[h] {
		return true
	}
	if g.repo.Storer.HasEncodedObject(h) == nil {
		g.known[h] = true
		return true
	}
	return false
}

// emptyTree is the hash of a tree with no entries.
var emptyTree = plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904")

// treeKey orders entries as git does: a directory sorts as if its name
// ended with "/".
func treeKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// blob returns the blob of the file at abs (p relative to the root),
// hashing it only when its stat changed since the cache saw it.
func (g *Git) blob(p, abs string) (h plumbing.Hash, mode filemode.FileMode, hashed bool, err error) {
	fi, err := os.Lstat(abs)
	if err != nil {
		return plumbing.ZeroHash, 0, false, err
	}
	mode = filemode.Regular
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		mode = filemode.Symlink
	case fi.Mode()&0o111 != 0:
		mode = filemode.Executable
	}
	st := statEntry{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Mode: uint32(mode)}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Ino = sys.Ino
	}
	if c, ok := g.cache[p]; ok && c.Size == st.Size && c.MTime == st.MTime && c.Ino == st.Ino && c.Mode == st.Mode {
		if h := plumbing.NewHash(c.Hash); g.has(h) {
			return h, mode, false, nil
		}
	}
	var data []byte
	if mode == filemode.Symlink {
		target, err := os.Readlink(abs)
		if err != nil {
			return plumbing.ZeroHash, 0, false, err
		}
		data = []byte(target)
	} else if data, err = os.ReadFile(abs); err != nil {
		return plumbing.ZeroHash, 0, false, err
	}
	obj := g.repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, 0, false, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, 0, false, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, 0, false, err
	}
	if h, err = g.store(obj); err != nil {
		return plumbing.ZeroHash, 0, false, err
	}
	st.Hash = h.String()
	g.cache[p] = st
	g.dirty = true
	return h, mode, true, nil
}

// withIgnoreFile adds the patterns of dir's .gitignore, if any.
func withIgnoreFile(dir string, domain []string, patterns []gitignore.Pattern) []gitignore.Pattern {
	b, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil {
		return patterns
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		patterns = append(patterns, gitignore.ParsePattern(line, domain))
	}
	return patterns
}

func splitPath(rel string) []string {
	if rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// ErrDirty: the working tree has changes that git does not have (relative
// to HEAD); restoring files over them needs force.
var ErrDirty = errors.New("the working tree has uncommitted changes")

// RestoreFiles makes the working tree (but .git, .12fa and ignored files)
// what commit recorded: files are written back, and files the commit does
// not have are removed. HEAD, the index and branches are not touched. It
// refuses when the tree differs from HEAD, unless force.
func (g *Git) RestoreFiles(commit string, force bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, err := g.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return fmt.Errorf("checkpoint: commit %s: %w", commit, err)
	}
	if !force {
		if head, err := g.repo.Head(); err == nil {
			var res Result
			now, err := g.writeTree("", nil, &res)
			if err != nil {
				return err
			}
			hc, err := g.repo.CommitObject(head.Hash())
			if err == nil && hc.TreeHash != now {
				return fmt.Errorf("checkpoint: %w (commit or stash them, or pass --force)", ErrDirty)
			}
		}
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	want := map[string]bool{}
	err = tree.Files().ForEach(func(f *object.File) error {
		want[f.Name] = true
		abs := filepath.Join(g.root, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return err
		}
		content, err := f.Contents()
		if err != nil {
			return err
		}
		_ = os.Remove(abs) // a symlink or a file of another mode
		switch f.Mode {
		case filemode.Symlink:
			return os.Symlink(content, abs)
		case filemode.Executable:
			return os.WriteFile(abs, []byte(content), 0o755)
		default:
			return os.WriteFile(abs, []byte(content), 0o644)
		}
	})
	if err != nil {
		return fmt.Errorf("checkpoint: restore files: %w", err)
	}
	// Remove what the checkpoint does not have (not ignored, not ours).
	_, err = g.listFiles("", nil, func(p string) error {
		if !want[p] {
			return os.Remove(filepath.Join(g.root, filepath.FromSlash(p)))
		}
		return nil
	})
	return err
}

// listFiles calls fn with every file that a checkpoint would record.
func (g *Git) listFiles(rel string, patterns []gitignore.Pattern, fn func(string) error) (int, error) {
	entries, patterns, err := g.recorded(rel, patterns)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		p := path.Join(rel, e.Name())
		if e.IsDir() {
			m, err := g.listFiles(p, patterns, fn)
			if err != nil {
				return n, err
			}
			n += m
			continue
		}
		n++
		if err := fn(p); err != nil {
			return n, err
		}
	}
	return n, nil
}

// CommitToBranch records the working tree as a real commit on the current
// branch (the seed's auto_commit), also referenced as RefPrefix+m.Ref. The
// branch moves and the index is rewritten to match the commit, so `git
// status` is clean afterwards for what was recorded. An unchanged tree
// makes no commit.
func (g *Git) CommitToBranch(m Meta) (Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var res Result
	head, err := g.repo.Storer.Reference(plumbing.HEAD)
	if err != nil || head.Type() != plumbing.SymbolicReference {
		return res, errors.New("checkpoint: auto_commit needs HEAD on a branch")
	}
	branch := head.Target()
	var parents []plumbing.Hash
	var parentTree plumbing.Hash
	if ref, err := g.repo.Storer.Reference(branch); err == nil {
		parents = append(parents, ref.Hash())
		if pc, err := g.repo.CommitObject(ref.Hash()); err == nil {
			parentTree = pc.TreeHash
		}
	}
	tree, err := g.writeTree("", nil, &res)
	if err != nil {
		return res, fmt.Errorf("checkpoint: %w", err)
	}
	res.Tree = tree.String()
	if len(parents) == 1 && tree == parentTree {
		res.Commit, res.Reused = parents[0].String(), true
		return res, g.setRef(m.Ref, parents[0])
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	sig := object.Signature{Name: "12fa", Email: "12fa@localhost", When: m.Time}
	c := &object.Commit{Author: sig, Committer: sig, Message: commitMessage(m), TreeHash: tree, ParentHashes: parents}
	obj := g.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return res, err
	}
	h, err := g.store(obj)
	if err != nil {
		return res, err
	}
	res.Commit = h.String()
	if err := g.writeIndex(tree); err != nil {
		return res, fmt.Errorf("checkpoint: update the index: %w", err)
	}
	if err := g.repo.Storer.SetReference(plumbing.NewHashReference(branch, h)); err != nil {
		return res, fmt.Errorf("checkpoint: move %s: %w", branch, err)
	}
	return res, g.setRef(m.Ref, h)
}

// writeIndex makes the index match tree h, with the files' stat data so
// that git sees them unchanged.
func (g *Git) writeIndex(h plumbing.Hash) error {
	tree, err := g.repo.TreeObject(h)
	if err != nil {
		return err
	}
	idx := &index.Index{Version: 2}
	err = tree.Files().ForEach(func(f *object.File) error {
		e := &index.Entry{Hash: f.Hash, Name: f.Name, Mode: f.Mode}
		if fi, err := os.Lstat(filepath.Join(g.root, filepath.FromSlash(f.Name))); err == nil {
			e.ModifiedAt, e.Size = fi.ModTime(), uint32(fi.Size())
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				e.CreatedAt = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
				e.Dev, e.Inode, e.UID, e.GID = uint32(st.Dev), uint32(st.Ino), st.Uid, st.Gid
			}
		}
		idx.Entries = append(idx.Entries, e)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(idx.Entries, func(i, j int) bool { return idx.Entries[i].Name < idx.Entries[j].Name })
	return g.repo.Storer.SetIndex(idx)
}

// commitMessage is m's message with its trailers.
func commitMessage(m Meta) string {
	msg := strings.TrimRight(m.Message, "\n") + "\n"
	if len(m.Trailers) > 0 {
		keys := make([]string, 0, len(m.Trailers))
		for k := range m.Trailers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		msg += "\n"
		for _, k := range keys {
			msg += k + ": " + m.Trailers[k] + "\n"
		}
	}
	return msg
}
