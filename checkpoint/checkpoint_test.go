package checkpoint_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/12fa/12fa/checkpoint"
	"github.com/12fa/12fa/internal/testutil"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// project is a git repository with a commit, ignored files and a store.
func project(t *testing.T) string {
	t.Helper()
	testutil.NeedTool(t, "git") // the comparisons below need the git CLI
	root := t.TempDir()
	git(t, root, "init", "-q")
	write(t, root, "README.md", "hello\n")
	write(t, root, "src/main.go", "package main\n")
	write(t, root, "src/deep/x.txt", "x\n")
	write(t, root, ".gitignore", "node_modules/\n*.log\n")
	write(t, root, "src/.gitignore", "gen/\n")
	write(t, root, "node_modules/big/index.js", "ignored\n")
	write(t, root, "debug.log", "ignored\n")
	write(t, root, "src/gen/out.go", "ignored\n")
	write(t, root, ".12fa/journal.jsonl", "not recorded\n")
	if err := os.Symlink("README.md", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, root, "add", "README.md")
	git(t, root, "commit", "-q", "-m", "first")
	return root
}

// gitTree is the tree the git CLI would record for the working tree, made
// in a scratch index so the user's index is untouched.
func gitTree(t *testing.T, root string) string {
	t.Helper()
	idx := filepath.Join(t.TempDir(), "index")
	cmd := func(args ...string) string {
		c := exec.Command("git", args...)
		c.Dir = root
		c.Env = append(os.Environ(), "GIT_INDEX_FILE="+idx)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	cmd("add", "-A", ".", ":!.12fa")
	return cmd("write-tree")
}

func TestGit_Checkpoint_MatchesGit(t *testing.T) {
	root := project(t)
	head := git(t, root, "rev-parse", "HEAD")
	g, err := checkpoint.Open(root, filepath.Join(t.TempDir(), "statcache.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Checkpoint(checkpoint.Meta{Ref: "r1/a", Message: "12fa: step a", Trailers: map[string]string{"12fa-Run": "r1", "12fa-Step": "a"}, Time: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if want := gitTree(t, root); res.Tree != want {
		t.Fatalf("tree %s, git says %s", res.Tree, want)
	}
	if got := git(t, root, "rev-parse", "refs/12fa/r1/a"); got != res.Commit {
		t.Fatalf("ref points at %s, want %s", got, res.Commit)
	}
	if got := git(t, root, "rev-parse", res.Commit+"^"); got != head {
		t.Fatalf("parent %s, want HEAD %s", got, head)
	}
	msg := git(t, root, "log", "-1", "--format=%B", res.Commit)
	if !strings.Contains(msg, "12fa-Step: a") {
		t.Fatalf("message %q", msg)
	}
	// The user's branch, HEAD and index are untouched.
	if git(t, root, "rev-parse", "HEAD") != head || git(t, root, "status", "--porcelain", "--", "README.md") != "" {
		t.Fatal("HEAD or index changed")
	}
	if strings.Contains(git(t, root, "ls-tree", "-r", "--name-only", res.Commit), "node_modules") {
		t.Fatal("an ignored directory was recorded")
	}

	// Unchanged tree: the parent is referenced again, no empty commit.
	again, err := g.Checkpoint(checkpoint.Meta{Ref: "r1/b", Message: "step b", Parent: res.Commit})
	if err != nil || !again.Reused || again.Commit != res.Commit || again.Hashed != 0 {
		t.Fatalf("unchanged: %+v %v", again, err)
	}
	// One changed file: only it is hashed again.
	write(t, root, "src/deep/x.txt", "changed\n")
	third, err := g.Checkpoint(checkpoint.Meta{Ref: "r1/c", Message: "step c", Parent: res.Commit})
	if err != nil || third.Reused || third.Hashed != 1 {
		t.Fatalf("one change: %+v %v", third, err)
	}
	if want := gitTree(t, root); third.Tree != want {
		t.Fatalf("tree %s, git says %s", third.Tree, want)
	}
	refs, _ := g.Refs()
	if len(refs) != 3 {
		t.Fatalf("refs %v", refs)
	}
	if err := g.SaveCache(); err != nil {
		t.Fatal(err)
	}
	if err := g.RemoveRefs(nil); err != nil {
		t.Fatal(err)
	}
	if refs, _ := g.Refs(); len(refs) != 0 {
		t.Fatalf("refs left %v", refs)
	}
}

func TestOpen_NotARepo(t *testing.T) {
	if _, err := checkpoint.Open(t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Fatalf("err = %v", err)
	}
}

// TestGit_CommitToBranch (auto_commit): real commits on the current branch,
// with the index matching, so git status is clean for what was recorded.
func TestGit_CommitToBranch(t *testing.T) {
	root := project(t)
	head := git(t, root, "rev-parse", "HEAD")
	g, err := checkpoint.Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.CommitToBranch(checkpoint.Meta{Ref: "r/a", Message: "12fa: step a", Trailers: map[string]string{"12fa-Step": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := git(t, root, "rev-parse", "HEAD"); got != res.Commit || git(t, root, "rev-parse", "HEAD^") != head {
		t.Fatalf("HEAD %s, want %s on top of %s", got, res.Commit, head)
	}
	if st := git(t, root, "status", "--porcelain", "--", ".", ":!.12fa"); st != "" {
		t.Fatalf("git status after auto commit:\n%s", st)
	}
	if git(t, root, "rev-parse", "refs/12fa/r/a") != res.Commit {
		t.Fatal("no shadow ref")
	}
	again, err := g.CommitToBranch(checkpoint.Meta{Ref: "r/b", Message: "b"})
	if err != nil || !again.Reused || git(t, root, "rev-parse", "HEAD") != res.Commit {
		t.Fatalf("unchanged tree made a commit: %+v %v", again, err)
	}
}

func TestMain(m *testing.M) { os.Exit(testutil.MainWithSummary(m)) }

// TestGit_RestoreFiles_WalksWhatCheckpointsRecord: a restore writes back
// what the commit has and removes the files it does not, walking the tree
// as a checkpoint does: a FIFO and a socket, which no checkpoint records,
// are left where they are, as are ignored files and the store.
func TestGit_RestoreFiles_WalksWhatCheckpointsRecord(t *testing.T) {
	root := project(t)
	g, err := checkpoint.Open(root, filepath.Join(t.TempDir(), "statcache.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Checkpoint(checkpoint.Meta{Ref: "r1/a", Message: "step a", Time: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(root, "src", "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	write(t, root, "src/new.go", "package main // added after the checkpoint\n")
	write(t, root, "README.md", "changed after the checkpoint\n")

	if err := g.RestoreFiles(res.Commit, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "src", "new.go")); !os.IsNotExist(err) {
		t.Fatalf("a file the checkpoint does not have was kept: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "README.md")); string(b) != "hello\n" {
		t.Fatalf("README.md is %q after the restore", b)
	}
	for _, p := range []string{fifo, sock, filepath.Join(root, "debug.log"), filepath.Join(root, ".12fa", "journal.jsonl")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed by the restore: %v", p, err)
		}
	}
}
