//go:build !windows

package host_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
)

type fsOp struct {
	Op   string `json:"op"`
	Path string `json:"path,omitempty"`
	To   string `json:"to,omitempty"`
	Data string `json:"data,omitempty"`
}

type fsResult struct {
	OK   bool   `json:"ok"`
	Data string `json:"data"`
	Err  string `json:"err"`
}

// grantTree builds base/{secret.txt, victim.txt, outside/, data/, out/} with
// symlinks planted inside the granted directories, pointing out of them.
func grantTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(base, "secret.txt"), []byte("top secret"), 0o644))
	must(os.WriteFile(filepath.Join(base, "victim.txt"), []byte("original"), 0o644))
	must(os.MkdirAll(filepath.Join(base, "outside"), 0o755))
	must(os.WriteFile(filepath.Join(base, "outside", "secret2.txt"), []byte("also secret"), 0o644))
	for _, d := range []string{"data", "out"} {
		must(os.MkdirAll(filepath.Join(base, d, "sub"), 0o755))
		must(os.WriteFile(filepath.Join(base, d, "file.txt"), []byte("hello"), 0o644))
		must(os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(base, d, "abs-file")))
		must(os.Symlink("../secret.txt", filepath.Join(base, d, "rel-file")))
		must(os.Symlink(filepath.Join(base, "outside"), filepath.Join(base, d, "abs-dir")))
		must(os.Symlink("../outside", filepath.Join(base, d, "rel-dir")))
		must(os.Symlink("file.txt", filepath.Join(base, d, "inner")))
		must(os.Symlink("../victim.txt", filepath.Join(base, d, "victim-link")))
	}
	return base
}

// grantMounts grants base/data read-only at /data and base/out read-write
// at /out.
func grantMounts(base string) []host.Mount {
	return []host.Mount{
		{HostPath: filepath.Join(base, "data"), GuestPath: "/data"},
		{HostPath: filepath.Join(base, "out"), GuestPath: "/out", ReadWrite: true},
	}
}

func probe(t *testing.T, p *host.Plugin, mounts []host.Mount, ops ...fsOp) []fsResult {
	t.Helper()
	res, err := p.Call(t.Context(), host.Request{
		Input:   envelope(t, "fs", map[string]any{"ops": ops}),
		Timeout: 20 * time.Second,
		Mounts:  mounts,
	})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var out struct{ Results []fsResult }
	if err := json.Unmarshal(res.Output, &out); err != nil || len(out.Results) != len(ops) {
		t.Fatalf("probe output %s: %v", res.Output, err)
	}
	return out.Results
}

func TestMount_Escapes(t *testing.T) {
	h := newHost(t)
	p := mustLoad(t, h, "fsprobe/fsprobe.wasm", 512)
	base := grantTree(t)
	mounts := grantMounts(base)
	tests := []struct {
		name string
		op   fsOp
	}{
		{"read absolute symlink to a file outside (ro)", fsOp{Op: "read", Path: "/data/abs-file"}},
		{"read relative symlink to a file outside (ro)", fsOp{Op: "read", Path: "/data/rel-file"}},
		{"read through absolute symlink to a dir outside (ro)", fsOp{Op: "read", Path: "/data/abs-dir/secret2.txt"}},
		{"read through relative symlink to a dir outside (ro)", fsOp{Op: "read", Path: "/data/rel-dir/secret2.txt"}},
		{"list a symlinked dir outside (ro)", fsOp{Op: "list", Path: "/data/rel-dir"}},
		{"read absolute symlink to a file outside (rw)", fsOp{Op: "read", Path: "/out/abs-file"}},
		{"read relative symlink to a file outside (rw)", fsOp{Op: "read", Path: "/out/rel-file"}},
		{"read through symlinked dir outside (rw)", fsOp{Op: "read", Path: "/out/rel-dir/secret2.txt"}},
		{"dot-dot out of a grant", fsOp{Op: "read", Path: "/data/../secret.txt"}},
		{"dot-dot out of a sub directory", fsOp{Op: "read", Path: "/out/sub/../../secret.txt"}},
		{"absolute host path", fsOp{Op: "read", Path: filepath.Join(base, "secret.txt")}},
		{"etc passwd", fsOp{Op: "read", Path: "/etc/passwd"}},
		{"write through a planted symlink (rw)", fsOp{Op: "write", Path: "/out/victim-link", Data: "pwned"}},
		{"append through a planted symlink (rw)", fsOp{Op: "append", Path: "/out/victim-link", Data: "pwned"}},
		{"truncate through a planted symlink (rw)", fsOp{Op: "truncate", Path: "/out/victim-link"}},
		{"write into a symlinked dir outside (rw)", fsOp{Op: "write", Path: "/out/rel-dir/new.txt", Data: "pwned"}},
		{"guest creates a relative symlink out (rw)", fsOp{Op: "symlink", Path: "/out/mine", To: "../secret.txt"}},
		{"guest creates an absolute symlink (rw)", fsOp{Op: "symlink", Path: "/out/mine2", To: "/etc/passwd"}},
		{"guest creates a hard link (rw)", fsOp{Op: "link", Path: "/out/hard", To: "/out/file.txt"}},
		{"rename a file out of the grant (rw)", fsOp{Op: "rename", Path: "/out/file.txt", To: "/out/../moved.txt"}},
		{"write to a read-only grant", fsOp{Op: "write", Path: "/data/new.txt", Data: "x"}},
		{"remove in a read-only grant", fsOp{Op: "remove", Path: "/data/file.txt"}},
		{"mkdir in a read-only grant", fsOp{Op: "mkdirall", Path: "/data/newdir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := probe(t, p, mounts, tc.op)[0]
			if r.OK {
				t.Fatalf("%s %s succeeded (data %q): the grant leaked", tc.op.Op, tc.op.Path, r.Data)
			}
			if strings.Contains(r.Data, "secret") {
				t.Fatalf("read %q", r.Data)
			}
		})
	}
	// Nothing outside changed.
	for name, want := range map[string]string{"secret.txt": "top secret", "victim.txt": "original", "outside/secret2.txt": "also secret"} {
		b, err := os.ReadFile(filepath.Join(base, name))
		if err != nil || string(b) != want {
			t.Errorf("%s is now %q (%v)", name, b, err)
		}
	}
	for _, name := range []string{"moved.txt", "outside/new.txt", "out/mine", "out/mine2", "out/hard"} {
		if _, err := os.Lstat(filepath.Join(base, name)); err == nil {
			t.Errorf("%s was created", name)
		}
	}
}

func TestMount_OrdinaryFileCodeWorks(t *testing.T) {
	h := newHost(t)
	p := mustLoad(t, h, "fsprobe/fsprobe.wasm", 512)
	base := grantTree(t)
	mounts := grantMounts(base)
	rs := probe(t, p, mounts,
		fsOp{Op: "read", Path: "/data/file.txt"},
		fsOp{Op: "read", Path: "/data/inner"}, // a symlink that stays inside
		fsOp{Op: "list", Path: "/data/sub"},
		fsOp{Op: "mkdirall", Path: "/out/a/b/c"},
		fsOp{Op: "write", Path: "/out/a/b/c/f.txt", Data: "written"},
		fsOp{Op: "append", Path: "/out/a/b/c/f.txt", Data: "+more"},
		fsOp{Op: "read", Path: "/out/a/b/c/f.txt"},
		fsOp{Op: "rename", Path: "/out/a/b/c/f.txt", To: "/out/g.txt"},
		fsOp{Op: "truncate", Path: "/out/g.txt"},
		fsOp{Op: "chtimes", Path: "/out/g.txt"},
		fsOp{Op: "read", Path: "/out/g.txt"},
		fsOp{Op: "remove", Path: "/out/file.txt"},
		fsOp{Op: "list", Path: "/out/a/b"},
		fsOp{Op: "env"},
	)
	want := []fsResult{
		{OK: true, Data: "hello"}, {OK: true, Data: "hello"}, {OK: true}, {OK: true}, {OK: true}, {OK: true},
		{OK: true, Data: "written+more"}, {OK: true}, {OK: true}, {OK: true}, {OK: true, Data: "wri"},
		{OK: true}, {OK: true, Data: "c"}, {OK: true, Data: ""},
	}
	for i := range want {
		if rs[i].OK != want[i].OK || rs[i].Data != want[i].Data {
			t.Errorf("op %d: got %+v, want %+v", i, rs[i], want[i])
		}
	}
	fi, err := os.Stat(filepath.Join(base, "out", "g.txt"))
	if err != nil || fi.ModTime().Year() != 2020 || fi.Size() != 3 {
		t.Errorf("g.txt on the host: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(base, "out", "file.txt")); err == nil {
		t.Error("remove did not reach the host")
	}
}

func TestMount_NoGrantNoFiles(t *testing.T) {
	h := newHost(t)
	p := mustLoad(t, h, "fsprobe/fsprobe.wasm", 512)
	base := grantTree(t)
	for _, path := range []string{"/", "/data/file.txt", filepath.Join(base, "secret.txt"), "/etc/passwd", "."} {
		r := probe(t, p, nil, fsOp{Op: "list", Path: path}, fsOp{Op: "read", Path: path})
		if r[0].OK || r[1].OK {
			t.Errorf("without a grant, %s: %+v", path, r)
		}
	}
}

func TestMount_MissingDirectory(t *testing.T) {
	h := newHost(t)
	p := mustLoad(t, h, "fsprobe/fsprobe.wasm", 512)
	_, err := p.Call(t.Context(), host.Request{Input: envelope(t, "fs", map[string]any{"ops": []fsOp{}}), Timeout: 5 * time.Second,
		Mounts: []host.Mount{{HostPath: filepath.Join(t.TempDir(), "nope"), GuestPath: "/x"}}})
	if host.CauseOf(err) != abi.CauseBadGrant {
		t.Fatalf("err = %v", err)
	}
}
