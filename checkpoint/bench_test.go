package checkpoint_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/12fa/12fa/checkpoint"
	"github.com/12fa/12fa/internal/testutil"
)

// bigProject makes a git repository of 5,000 files in 50 directories, plus
// an ignored node_modules of 20,000 files.
func bigProject(b *testing.B) string {
	b.Helper()
	testutil.NeedTool(b, "git")
	root := b.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	for d := range 50 {
		dir := filepath.Join(root, "src", fmt.Sprintf("pkg%02d", d))
		os.MkdirAll(dir, 0o755)
		for f := range 100 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.go", f)), fmt.Appendf(nil, "package pkg%02d // %d\n%s", d, f, make([]byte, 512)), 0o644)
		}
	}
	for d := range 200 {
		dir := filepath.Join(root, "node_modules", fmt.Sprintf("m%03d", d))
		os.MkdirAll(dir, 0o755)
		for f := range 100 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("i%03d.js", f)), []byte("module.exports = 1\n"), 0o644)
		}
	}
	os.WriteFile(filepath.Join(root, ".gitignore"), []byte("node_modules/\n"), 0o644)
	git("add", "-A")
	git("commit", "-q", "-m", "base")
	return root
}

// BenchmarkCheckpoint_OneChangedFile is one step's checkpoint of a
// 5,000-file tree (plus 20,000 ignored files) with one file changed, by
// 12fa and by the git CLI (git add -A && git commit), same tree, same
// change.
func BenchmarkCheckpoint_OneChangedFile(b *testing.B) {
	root := bigProject(b)
	changed := filepath.Join(root, "src", "pkg07", "f042.go")
	b.Run("12fa", func(b *testing.B) {
		g, err := checkpoint.Open(root, "")
		if err != nil {
			b.Fatal(err)
		}
		parent := ""
		if res, err := g.Checkpoint(checkpoint.Meta{Ref: "bench/warm", Message: "warm"}); err == nil {
			parent = res.Commit // the first one hashes everything
		}
		i := 0
		for b.Loop() {
			i++
			os.WriteFile(changed, fmt.Appendf(nil, "package pkg07 // change %d\n", i), 0o644)
			res, err := g.Checkpoint(checkpoint.Meta{Ref: fmt.Sprintf("bench/%d", i), Message: "step", Parent: parent})
			if err != nil {
				b.Fatal(err)
			}
			if res.Hashed != 1 {
				b.Fatalf("rehashed %d files for one change", res.Hashed)
			}
			parent = res.Commit
		}
	})
	b.Run("git-cli", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			os.WriteFile(changed, fmt.Appendf(nil, "package pkg07 // cli change %d\n", i), 0o644)
			cmd := exec.Command("sh", "-c", "git add -A && git commit -q -m step")
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v\n%s", err, out)
			}
		}
	})
}
