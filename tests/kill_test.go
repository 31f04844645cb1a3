//go:build integration

package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// writeManifest writes a workflow of n idempotent steps of the effect plugin.
func writeManifest(t *testing.T, dir string, n int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[workflow]\nname = \"long\"\n\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "[[step]]\nid = \"s%04d\"\nplugin = %q\nidempotent = true\nneeds = []\n\n", i, filepath.Join(examples(t), "effect", "effect.wasm"))
	}
	p := filepath.Join(dir, "long.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var effectLine = regexp.MustCompile(`^    (s\d{4}) info: effect (s\d{4})$`)

// start starts `12fa run` and returns the process and a function that waits
// for it and returns its effect lines. With killAfter >= 0 it SIGKILLs the
// process jitter after its killAfter-th effect line (0: after start).
func start(t *testing.T, project, manifest string, killAfter int, jitter time.Duration) (*exec.Cmd, func() ([]string, error)) {
	t.Helper()
	cmd := exec.Command(bin, "-C", project, "--cache-dir", cacheDir, "run", manifest)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		effects []string
		once    sync.Once
	)
	kill := func() {
		once.Do(func() {
			time.Sleep(jitter)
			_ = cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	if killAfter == 0 {
		go kill()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := effectLine.FindStringSubmatch(sc.Text()); m != nil {
				effects = append(effects, m[2])
				if killAfter > 0 && len(effects) == killAfter {
					go kill()
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	return cmd, func() ([]string, error) {
		wg.Wait()
		err := cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return effects, err
	}
}

// TestKill9_ResumesExactlyOnce SIGKILLs `12fa run` of a 1000-step workflow
// at random moments, resumes it each time, and checks that every step's
// effect happened once, except at most the one step in flight at each kill,
// and that the result is what an uninterrupted run gives.
func TestKill9_ResumesExactlyOnce(t *testing.T) {
	const steps, minKills = 1000, 20
	project := t.TempDir()
	manifest := writeManifest(t, project, steps)
	// Warm the compile cache so that kills land in step execution, not in
	// the first compile.
	warm := t.TempDir()
	if out, err := exec.Command(bin, "-C", warm, "--cache-dir", cacheDir, "run", "-q", writeManifest(t, warm, 1)).CombinedOutput(); err != nil {
		t.Fatalf("warm-up: %v\n%s", err, out)
	}

	seen := map[string]int{}
	kills, processes := 0, 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for {
		processes++
		// Kill after a random number of effects, spread so that minKills
		// kills land before the run can finish, plus a random delay of up to
		// a few steps so that kills fall anywhere in a step (or, at 0, in
		// start-up and journal replay).
		killAt := -1
		if kills < minKills {
			left := steps - len(seen)
			killAt = rng.IntN(max(1, 2*left/(minKills-kills+2)))
		}
		jitter := time.Duration(rng.IntN(5000)) * time.Microsecond
		_, wait := start(t, project, manifest, killAt, jitter)
		killed := killAt >= 0
		effects, err := wait()
		for _, e := range effects {
			seen[e]++
		}
		if killed {
			var ee *exec.ExitError
			if err == nil {
				killed = false // it finished before the signal landed
			} else if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("process %d: %v", processes, err)
			} else {
				kills++
			}
		}
		if !killed {
			if err != nil {
				t.Fatalf("process %d (not killed) failed: %v", processes, err)
			}
			break
		}
		if processes > 200 {
			t.Fatal("no completion after 200 processes")
		}
	}

	reruns := 0
	for i := 1; i <= steps; i++ {
		id := fmt.Sprintf("s%04d", i)
		switch n := seen[id]; {
		case n == 0:
			t.Errorf("step %s never ran", id)
		case n > 1:
			reruns += n - 1
		}
	}
	if reruns > kills {
		t.Errorf("%d re-runs for %d kills: a completed step ran again", reruns, kills)
	}
	// The context count is written with each step's result, so it counts
	// completed steps exactly once whatever ran twice.
	out, err := exec.Command(bin, "-C", project, "status", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Runs []struct {
			Status  string                     `json:"status"`
			Context map[string]json.RawMessage `json:"context"`
			Steps   []struct {
				Status string `json:"status"`
			} `json:"steps"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 1 {
		t.Fatalf("%d runs in the store, want 1 resumed run", len(st.Runs))
	}
	r := st.Runs[0]
	if r.Status != "completed" || string(r.Context["count"]) != fmt.Sprint(steps) {
		t.Fatalf("run %s with count %s, want completed with %d", r.Status, r.Context["count"], steps)
	}
	for i, s := range r.Steps {
		if s.Status != "completed" {
			t.Fatalf("step %d is %s", i+1, s.Status)
		}
	}
	if kills < minKills {
		t.Fatalf("only %d kills landed", kills)
	}
	t.Logf("%d steps, %d processes, %d SIGKILLs, %d steps re-run (each the one in flight at a kill)", steps, processes, kills, reruns)
}
