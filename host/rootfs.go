//go:build !windows

package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// rootFS is a wazero file system over an os.Root. It is the only way a
// guest reaches host files. It uses wazero's experimental sys API, so
// wazero is pinned and the escape tests in fs_test.go must keep passing on
// every upgrade.
type rootFS struct {
	experimentalsys.UnimplementedFS
	root *os.Root
}

// rel turns a path wazero hands us (relative to the mount) into one for
// os.Root.
func rel(p string) string {
	if p == "" || p == "/" {
		return "."
	}
	if p[0] == '/' {
		return p[1:]
	}
	return p
}

// errno maps an os error to a WASI errno. Refusals of os.Root (a path or
// link that escapes the root) have no errno of their own: they become
// EPERM, as does anything unknown.
func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		return experimentalsys.UnwrapOSError(err)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return experimentalsys.ENOENT
	case errors.Is(err, fs.ErrExist):
		return experimentalsys.EEXIST
	}
	return experimentalsys.EPERM
}

func osFlag(oflag experimentalsys.Oflag) int {
	var flag int
	switch oflag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		flag = os.O_RDWR
	case experimentalsys.O_WRONLY:
		flag = os.O_WRONLY
	default:
		flag = os.O_RDONLY
	}
	for _, m := range []struct {
		w experimentalsys.Oflag
		o int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND}, {experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL}, {experimentalsys.O_SYNC, os.O_SYNC},
		{experimentalsys.O_TRUNC, os.O_TRUNC}, {experimentalsys.O_DIRECTORY, syscall.O_DIRECTORY},
		{experimentalsys.O_NOFOLLOW, syscall.O_NOFOLLOW},
	} {
		if oflag&m.w != 0 {
			flag |= m.o
		}
	}
	return flag
}

// opener is an fs.FS that opens through the root with fixed flags: it lets
// wazero's AdaptFS wrap an *os.File (with writes, seeks and directory
// reads) while the open itself stays inside the root.
type opener struct {
	root *os.Root
	flag int
	perm fs.FileMode
	last *os.File
	err  error
}

func (o *opener) Open(name string) (fs.File, error) {
	f, err := o.root.OpenFile(rel(name), o.flag, o.perm)
	if err != nil {
		o.err = err
		return nil, err
	}
	o.last = f
	return f, nil
}

func (r *rootFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	o := &opener{root: r.root, flag: osFlag(flag), perm: perm}
	f, en := (&sysfs.AdaptFS{FS: o}).OpenFile(p, flag, perm)
	if en != 0 {
		if o.err != nil {
			return nil, errno(o.err) // the precise reason, not wazero's guess
		}
		return nil, en
	}
	return &rootFile{File: f, root: r.root, name: rel(p), os: o.last}, 0
}

func (r *rootFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := r.root.Lstat(rel(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (r *rootFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := r.root.Stat(rel(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (r *rootFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	return errno(r.root.Mkdir(rel(p), perm))
}

func (r *rootFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	return errno(r.root.Chmod(rel(p), perm))
}

func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	return errno(r.root.Rename(rel(from), rel(to)))
}

func (r *rootFS) Rmdir(p string) experimentalsys.Errno {
	fi, err := r.root.Lstat(rel(p))
	if err != nil {
		return errno(err)
	}
	if !fi.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return errno(r.root.Remove(rel(p)))
}

func (r *rootFS) Unlink(p string) experimentalsys.Errno {
	fi, err := r.root.Lstat(rel(p))
	if err != nil {
		return errno(err)
	}
	if fi.IsDir() {
		return experimentalsys.EISDIR
	}
	return errno(r.root.Remove(rel(p)))
}

// Link is refused: a hard link made by the guest could later be reached
// from outside the grant, or reach into it.
func (r *rootFS) Link(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

// Symlink is refused: the guest must not plant links for others to follow.
func (r *rootFS) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

func (r *rootFS) Readlink(p string) (string, experimentalsys.Errno) {
	s, err := r.root.Readlink(rel(p))
	if err != nil {
		return "", errno(err)
	}
	return s, 0
}

func (r *rootFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	return utimens(r.root, rel(p), atim, mtim)
}

func utimens(root *os.Root, name string, atim, mtim int64) experimentalsys.Errno {
	if atim == experimentalsys.UTIME_OMIT || mtim == experimentalsys.UTIME_OMIT {
		fi, err := root.Stat(name)
		if err != nil {
			return errno(err)
		}
		st := sys.NewStat_t(fi)
		if atim == experimentalsys.UTIME_OMIT {
			atim = st.Atim
		}
		if mtim == experimentalsys.UTIME_OMIT {
			mtim = st.Mtim
		}
	}
	return errno(root.Chtimes(name, time.Unix(0, atim), time.Unix(0, mtim)))
}

// rootFile adds to wazero's adapted file what an fs.File cannot express:
// truncate, sync and times, done on the open *os.File or through the root.
type rootFile struct {
	experimentalsys.File
	root *os.Root
	name string
	os   *os.File
}

func (f *rootFile) Truncate(size int64) experimentalsys.Errno { return errno(f.os.Truncate(size)) }
func (f *rootFile) Sync() experimentalsys.Errno               { return errno(f.os.Sync()) }
func (f *rootFile) Datasync() experimentalsys.Errno           { return errno(f.os.Sync()) }
func (f *rootFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	return utimens(f.root, f.name, atim, mtim)
}

// mountConfig opens every grant's root and builds the FS configuration.
// close releases the roots after the call.
func mountConfig(mounts []Mount) (cfg wazero.FSConfig, closeAll func(), err error) {
	var roots []*os.Root
	closeAll = func() {
		for _, r := range roots {
			_ = r.Close()
		}
	}
	fsc := wazero.NewFSConfig()
	for _, m := range mounts {
		guest := path.Clean(m.GuestPath)
		if !path.IsAbs(guest) {
			closeAll()
			return nil, nil, callErr(ErrGrant, "guest path %q is not absolute", m.GuestPath)
		}
		root, err := os.OpenRoot(m.HostPath)
		if err != nil {
			closeAll()
			return nil, nil, callErr(ErrGrant, "%s: %v", m.HostPath, err)
		}
		roots = append(roots, root)
		var f experimentalsys.FS = &rootFS{root: root}
		if !m.ReadWrite {
			f = &sysfs.ReadFS{FS: f}
		}
		sfc, ok := fsc.(sysfs.FSConfig)
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("host: wazero FSConfig lacks WithSysFSMount (wazero version changed?)")
		}
		fsc = sfc.WithSysFSMount(f, guest)
	}
	return fsc, closeAll, nil
}
