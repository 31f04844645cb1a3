//go:build integration

package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill9_NonIdempotentStepNeedsAPerson kills `12fa run` inside a
// non-idempotent step and checks that neither `run` nor `resume` runs it
// again on their own: they ask a person (exit code 5, a question in
// `12fa inputs`) and say how to go on, and --mark-done completes the run
// without running the step.
func TestKill9_NonIdempotentStepNeedsAPerson(t *testing.T) {
	project := t.TempDir()
	effect := filepath.Join(examples(t), "effect", "effect.wasm")
	manifest := filepath.Join(project, "charge.toml")
	body := fmt.Sprintf(`[workflow]
name = "charge"

[[step]]
id = "prepare"
plugin = %[1]q
idempotent = true

[[step]]
id = "charge-card"
plugin = %[1]q
input = { sleep_ms = 5000 }

[[step]]
id = "receipt"
plugin = %[1]q
idempotent = true
`, effect)
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, wait := start(t, project, manifest, -1, 0)
	// Wait until the non-idempotent step has started (its start record is
	// fsync'd before the plugin runs), then kill.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command(bin, "-C", project, "status", "--json").Output()
		if strings.Contains(string(out), `"status": "running",`) && strings.Contains(string(out), `"id": "charge-card"`) &&
			strings.Count(string(out), `"status": "completed"`) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("charge-card never started: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait()

	for _, args := range [][]string{{"run", manifest}, {"resume"}} {
		out, err := exec.Command(bin, append([]string{"-C", project, "--cache-dir", cacheDir}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Fatalf("%v: err %v, want exit code 5 (a question for a person)\n%s", args, err, out)
		}
		for _, want := range []string{`step "charge-card"`, "interrupted", "rerun, mark-done or abort", "--rerun-interrupted", "--mark-done"} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("%v: output lacks %q:\n%s", args, want, out)
			}
		}
		if strings.Contains(string(out), "effect charge-card") {
			t.Fatalf("%v ran the interrupted step:\n%s", args, out)
		}
	}
	if q, _ := exec.Command(bin, "-C", project, "inputs").Output(); !strings.Contains(string(q), "rerun/mark-done/abort") {
		t.Fatalf("no question about the interrupted step:\n%s", q)
	}
	out, err := exec.Command(bin, "-C", project, "--cache-dir", cacheDir, "resume", "--mark-done").CombinedOutput()
	if err != nil {
		t.Fatalf("resume --mark-done: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "effect charge-card") || !strings.Contains(string(out), "effect receipt") ||
		!strings.Contains(string(out), "completed: 1 ran, 1 replayed from the journal, 1 marked done without running") {
		t.Fatalf("resume --mark-done:\n%s", out)
	}
	status, _ := exec.Command(bin, "-C", project, "status").Output()
	if !strings.Contains(string(status), "marked done by hand") {
		t.Fatalf("status:\n%s", status)
	}
}
