//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/12fa/12fa/internal/testutil"
)

// execProject writes a one-step fetch workflow running commands in the
// write grant work/ (as /work), with the given allow lines, and returns the
// project and the manifest.
func execProject(t *testing.T, input, allow string) (string, string) {
	t.Helper()
	return fetchProject(t, "exec", true, input, "write_paths = { \"work\" = \"/work\" }\n"+allow)
}

type execResult struct {
	ExitCode  int    `json:"exit_code"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Truncated bool   `json:"truncated"`
}

func commandsRan(t *testing.T, step stepResult) []execResult {
	t.Helper()
	var out struct {
		Commands []execResult `json:"commands"`
	}
	if err := json.Unmarshal(step.Output, &out); err != nil {
		t.Fatalf("output %s: %v", step.Output, err)
	}
	return out.Commands
}

func cmdInput(cmds ...string) string {
	return "{ commands = [" + strings.Join(cmds, ", ") + "] }"
}

// TestExec: a granted command runs in the write grant with exactly the
// environment granted; a non-zero exit is data; anything else is refused
// before it runs.
func TestExec(t *testing.T) {
	dir, m := execProject(t, cmdInput(`{ command = "env" }`, `{ command = "sh", args = ["-c", "pwd; echo oops >&2; exit 3"] }`),
		`commands = ["env", "sh"]`+"\nenv = [\"HOME\", \"TWELVEFA_TEST_VAR\"]")
	cmd := exec.Command(bin, "-C", dir, "--cache-dir", cacheDir, "run", m)
	cmd.Env = append(os.Environ(), "TWELVEFA_TEST_VAR=granted", "TWELVEFA_OTHER=not granted", "AWS_SECRET_ACCESS_KEY=leak")
	out, _ := cmd.CombinedOutput()
	step, _ := fetchStatus(t, dir)
	if step.Status != "completed" {
		t.Fatalf("%+v\n%s", step, out)
	}
	ran := commandsRan(t, step)
	env := strings.Fields(ran[0].Stdout)
	home := os.Getenv("HOME")
	want := []string{"HOME=" + home, "TWELVEFA_TEST_VAR=granted"}
	if strings.Join(env, " ") != strings.Join(want, " ") {
		t.Errorf("the command's environment is %q, want exactly %q", env, want)
	}
	real, _ := filepath.EvalSymlinks(filepath.Join(dir, "work"))
	if ran[1].ExitCode != 3 || strings.TrimSpace(ran[1].Stdout) != real || strings.TrimSpace(ran[1].Stderr) != "oops" {
		t.Errorf("sh: %+v, want exit 3 in %s", ran[1], real)
	}

	for name, tc := range map[string]struct{ input, allow string }{
		"not granted":       {cmdInput(`{ command = "rm", args = ["-rf", "/tmp/x"] }`), `commands = ["env"]`},
		"env not granted":   {cmdInput(`{ command = "env", env = { PATH = "/evil" } }`), `commands = ["env"]`},
		"cwd out":           {cmdInput(`{ command = "env", cwd = "/work/../.." }`), `commands = ["env"]`},
		"cwd not a grant":   {cmdInput(`{ command = "env", cwd = "/etc" }`), `commands = ["env"]`},
		"go -exec":          {cmdInput(`{ command = "go", args = ["test", "-exec=/bin/sh", "./..."] }`), `commands = ["go"]`},
		"go -toolexec":      {cmdInput(`{ command = "go", args = ["build", "-toolexec", "/bin/sh"] }`), `commands = ["go"]`},
		"git -c":            {cmdInput(`{ command = "git", args = ["-c", "core.sshCommand=touch marker", "fetch"] }`), `commands = ["git"]`},
		"git -c later":      {cmdInput(`{ command = "git", args = ["fetch", "-c", "core.sshCommand=touch marker"] }`), `commands = ["git"]`},
		"git --upload-pack": {cmdInput(`{ command = "git", args = ["clone", "--upload-pack=touch marker", "x", "y"] }`), `commands = ["git"]`},
		"git ext::":         {cmdInput(`{ command = "git", args = ["clone", "ext::sh -c touch% marker", "y"] }`), `commands = ["git"]`},
		"git option first":  {cmdInput(`{ command = "git", args = ["--exec-path=.", "status"] }`), `commands = ["git"]`},
		"no grant at all":   {cmdInput(`{ command = "env" }`), ``},
	} {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(tc.allow, `"git"`) {
				testutil.NeedTool(t, "git") // resolved when the workflow loads
			}
			dir, m := execProject(t, tc.input, tc.allow)
			out := run12faIn(t, dir, "run", m)
			step, _ := fetchStatus(t, dir)
			if step.Status != "failed" || step.Cause != "exec_denied" {
				t.Errorf("%s %s (%s)\n%s", step.Status, step.Cause, step.Error, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "work", "marker")); err == nil {
				t.Error("the marker file appeared")
			}
		})
	}
	// A symlink out of the grant is not a way out.
	dir, m = execProject(t, cmdInput(`{ command = "env", cwd = "/work/out" }`), `commands = ["env"]`)
	if err := os.Symlink("/", filepath.Join(dir, "work", "out")); err != nil {
		t.Fatal(err)
	}
	run12faIn(t, dir, "run", m)
	if step, _ := fetchStatus(t, dir); step.Cause != "exec_denied" || !strings.Contains(step.Error, "symlink") {
		t.Errorf("symlinked cwd: %+v", step)
	}
}

// TestExecGitConfig: a repository config the step wrote (an fsmonitor, a
// hook) does not run when the step runs git in it.
func TestExecGitConfig(t *testing.T) {
	testutil.NeedTool(t, "git")
	dir, m := execProject(t, cmdInput(`{ command = "git", args = ["status", "--short"] }`, `{ command = "git", args = ["commit", "--allow-empty", "-m", "x"] }`),
		`commands = ["git"]`+"\nenv = [\"HOME\"]")
	work := filepath.Join(dir, "work")
	for _, args := range [][]string{{"init", "-q"}, {"config", "user.email", "a@b"}, {"config", "user.name", "a"},
		{"config", "core.fsmonitor", "touch " + filepath.Join(work, "marker-fsmonitor") + "; false"}} {
		if out, err := exec.Command("git", append([]string{"-C", work}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	hook := filepath.Join(work, ".git", "hooks", "pre-commit")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\ntouch "+filepath.Join(work, "marker-hook")+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := run12faIn(t, dir, "run", m)
	step, _ := fetchStatus(t, dir)
	if step.Status != "completed" {
		t.Fatalf("%+v\n%s", step, out)
	}
	for _, marker := range []string{"marker-fsmonitor", "marker-hook"} {
		if _, err := os.Stat(filepath.Join(work, marker)); err == nil {
			t.Errorf("%s appeared: the repository's config ran", marker)
		}
	}
}

// TestExecKill: a command that forks a grandchild holding stdout is killed
// with it at the deadline, and nothing is left running; output over the cap
// is cut.
func TestExecKill(t *testing.T) {
	tag := fmt.Sprintf("31.%d", time.Now().UnixNano()%1000000)
	dir, m := execProject(t, cmdInput(fmt.Sprintf(`{ command = "sh", args = ["-c", "sleep %s & sleep %s"], timeout = "500ms" }`, tag, tag)), `commands = ["sh"]`)
	start := time.Now()
	out := run12faIn(t, dir, "run", m)
	took := time.Since(start)
	step, _ := fetchStatus(t, dir)
	if step.Cause != "exec_timeout" || took > 4*time.Second {
		t.Errorf("%+v after %s\n%s", step, took, out)
	}
	time.Sleep(100 * time.Millisecond)
	if left := processesWith("sleep\x00" + tag); len(left) > 0 {
		t.Errorf("processes left running: %v", left)
		for _, pid := range left {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}

	dir, m = execProject(t, cmdInput(`{ command = "sh", args = ["-c", "head -c 5000000 /dev/zero | tr '\\000' x"] }`), `commands = ["sh"]`)
	run12faIn(t, dir, "run", m)
	step, _ = fetchStatus(t, dir)
	if ran := commandsRan(t, step); step.Status != "completed" || !ran[0].Truncated || len(ran[0].Stdout) != 1<<20 {
		t.Errorf("5 MB of output: %s, truncated %v, %d bytes kept", step.Status, ran[0].Truncated, len(ran[0].Stdout))
	}
}

// processesWith returns the pids whose command line (NUL-separated, as
// /proc holds it) contains s.
func processesWith(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestExecManifest: grants that would hand a command more are refused when
// the workflow loads, with the file and line.
func TestExecManifest(t *testing.T) {
	dir, m := execProject(t, cmdInput(), `commands = ["env"]`+"\nenv = [\"LD_PRELOAD\"]")
	if out := run12faIn(t, dir, "validate", m); !strings.Contains(out, "plugin-manifest.toml:10: invalid manifest: step \"fetch\": allow.env: LD_PRELOAD lets a command run something else") {
		t.Errorf("LD_PRELOAD: %s", out)
	}
	dir, m = execProject(t, cmdInput(), `commands = ["no-such-command-12fa"]`)
	if out := run12faIn(t, dir, "validate", m); !strings.Contains(out, "plugin-manifest.toml:9: invalid manifest: step \"fetch\": allow.commands: command \"no-such-command-12fa\"") {
		t.Errorf("missing command: %s", out)
	}
	// A fake go first on PATH, inside the write grant.
	dir, m = execProject(t, cmdInput(), `commands = ["go"]`)
	fake := filepath.Join(dir, "work", "go")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch marker\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-C", dir, "validate", m)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(dir, "work")+":"+os.Getenv("PATH"))
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "inside the write grant") {
		t.Errorf("fake go on PATH: %s", out)
	}
}

// TestExecReplay: a command that is not idempotent, run before a question,
// is not run again when the step runs again after the answer.
func TestExecReplay(t *testing.T) {
	dir, m := execProject(t, `{ ask = "Go on?", commands = [{ command = "sh", args = ["-c", "echo ran >> count; wc -l < count"] }] }`, `commands = ["sh"]`)
	run12faIn(t, dir, "run", m)
	out := respondAll(t, dir, "yes") + run12faIn(t, dir, "resume")
	step, _ := fetchStatus(t, dir)
	b, _ := os.ReadFile(filepath.Join(dir, "work", "count"))
	if step.Status != "completed" || strings.Count(string(b), "ran") != 1 || strings.TrimSpace(commandsRan(t, step)[0].Stdout) != "1" {
		t.Errorf("%+v, count file %q\n%s", step, b, out)
	}
}
