//go:build integration

package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// replayProject is a project whose one step, fetch, is not idempotent and
// makes input's calls; it returns the project and the manifest.
func replayProject(t *testing.T, input, allow string) (string, string) {
	t.Helper()
	return fetchProject(t, "replay", false, input, allow)
}

// fetchStatus is the fetch step as `12fa status --json` shows it.
func fetchStatus(t *testing.T, dir string) (stepResult, string) {
	t.Helper()
	out, err := exec.Command(bin, "-C", dir, "status", "--json").Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var s struct {
		Runs []struct {
			Status string       `json:"status"`
			Cause  string       `json:"cause"`
			Steps  []stepResult `json:"steps"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out, &s); err != nil || len(s.Runs) != 1 {
		t.Fatalf("status: %v\n%s", err, out)
	}
	return s.Runs[0].Steps[0], s.Runs[0].Status
}

func run12faIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, _ := exec.Command(bin, append([]string{"-C", dir, "--cache-dir", cacheDir}, args...)...).CombinedOutput()
	return string(out)
}

// respondAll answers every pending question of the project with answer.
func respondAll(t *testing.T, dir, answer string) string {
	t.Helper()
	out, err := exec.Command(bin, "-C", dir, "inputs", "--all", "--json").Output()
	if err != nil {
		t.Fatalf("inputs: %v", err)
	}
	var qs struct {
		Questions []struct {
			ID string `json:"id"`
		} `json:"questions"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, q := range qs.Questions {
		b.WriteString(run12faIn(t, dir, "respond", q.ID, answer))
	}
	return b.String()
}

// TestReplayAfterQuestion: a step POSTs, then asks a question and waits;
// once answered it runs again from its start, and gets the POST's recorded
// response instead of sending it again: the server sees one POST.
func TestReplayAfterQuestion(t *testing.T) {
	var posts atomic.Int64
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			fmt.Fprintf(w, "charge %d", posts.Add(1))
		}
	})
	dir, m := replayProject(t, fmt.Sprintf(`{ ask = "Ship it?", requests = [{ method = "POST", url = %q, body = "amount=10" }] }`, s.URL+"/charge"),
		fmt.Sprintf("hosts = [%q]\nprivate = [\"127.0.0.1\"]", s.URL))
	out := run12faIn(t, dir, "run", m)
	if step, _ := fetchStatus(t, dir); step.Status != "waiting" {
		t.Fatalf("after run: %+v\n%s", step, out)
	}
	out = respondAll(t, dir, "yes") + run12faIn(t, dir, "resume")
	step, _ := fetchStatus(t, dir)
	if step.Status != "completed" || fetchedBody(t, step) != "charge 1" {
		t.Fatalf("after resume: %+v\n%s", step, out)
	}
	if !strings.Contains(out, "replayed") {
		t.Errorf("resume does not say the call was replayed:\n%s", out)
	}
	if posts.Load() != 1 {
		t.Errorf("the server saw %d POSTs, want 1", posts.Load())
	}
	t.Logf("POST, question, answer, resume: the server saw %d POST", posts.Load())

	// A body over the journal's inline limit is kept in a blob, and
	// replayed from it.
	big := strings.Repeat("0123456789abcdef", 128<<10) // 2 MiB
	var bigs atomic.Int64
	b := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { bigs.Add(1); fmt.Fprint(w, big) })
	dir, m = replayProject(t, fmt.Sprintf(`{ ask = "Ship it?", requests = [{ method = "POST", url = %q }] }`, b.URL+"/big"),
		fmt.Sprintf("hosts = [%q]\nprivate = [\"127.0.0.1\"]", b.URL))
	run12faIn(t, dir, "run", m)
	out = respondAll(t, dir, "yes") + run12faIn(t, dir, "resume")
	step, _ = fetchStatus(t, dir)
	blobs, _ := os.ReadDir(filepath.Join(dir, ".12fa", "blobs"))
	if step.Status != "completed" || fetchedBody(t, step) != big || bigs.Load() != 1 || len(blobs) != 1 {
		t.Fatalf("2 MiB body: %s, %d requests, %d blobs\n%s", step.Status, bigs.Load(), len(blobs), out)
	}
}

// TestReplayAfterKill: the process is killed (SIGKILL) by the server while
// a step's second request is in flight, after the POST before it was
// answered and journaled. Run again, the step gets the POST's recorded
// response: one POST. Killed instead while the POST itself is in flight
// (sent, not journaled), the step fails http_outcome_unknown and the run
// pauses, never sending it again: still one POST.
func TestReplayAfterKill(t *testing.T) {
	var (
		posts  atomic.Int64
		mu     sync.Mutex
		victim *exec.Cmd
		kills  atomic.Int64
	)
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if victim != nil && victim.Process != nil {
			kills.Add(1)
			_ = victim.Process.Signal(syscall.SIGKILL)
		}
	}
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/charge":
			fmt.Fprintf(w, "charge %d", posts.Add(1))
		case "/charge-and-die":
			posts.Add(1)
			kill()
			time.Sleep(100 * time.Millisecond)
		case "/die":
			if kills.Load() == 0 {
				kill()
				time.Sleep(100 * time.Millisecond)
				return
			}
			fmt.Fprint(w, "alive")
		}
	})
	allow := fmt.Sprintf("hosts = [%q]\nprivate = [\"127.0.0.1\"]", s.URL)
	runKilled := func(dir string, args ...string) {
		cmd := exec.Command(bin, append([]string{"-C", dir, "--cache-dir", cacheDir}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		// Started under the lock: the server's kill reads cmd.Process.
		mu.Lock()
		err := cmd.Start()
		victim = cmd
		mu.Unlock()
		if err == nil {
			err = cmd.Wait()
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the run was not killed: %v\n%s", err, out.Bytes())
		}
		mu.Lock()
		victim = nil
		mu.Unlock()
	}

	t.Run("after the response is journaled", func(t *testing.T) {
		posts.Store(0)
		kills.Store(0)
		dir, m := replayProject(t, fmt.Sprintf(`{ requests = [{ method = "POST", url = %q }, { url = %q }] }`, s.URL+"/charge", s.URL+"/die"), allow)
		runKilled(dir, "run", m)
		out := run12faIn(t, dir, "resume", "--rerun-interrupted")
		step, _ := fetchStatus(t, dir)
		if step.Status != "completed" || fetchedBody(t, step) != "charge 1" || posts.Load() != 1 {
			t.Fatalf("after resume: %+v, %d POSTs\n%s", step, posts.Load(), out)
		}
		t.Logf("kill -9 after the POST's response was journaled, resume: the server saw %d POST", posts.Load())
	})
	t.Run("sent but not journaled", func(t *testing.T) {
		posts.Store(0)
		kills.Store(0)
		dir, m := replayProject(t, fmt.Sprintf(`{ requests = [{ method = "POST", url = %q }] }`, s.URL+"/charge-and-die"), allow)
		runKilled(dir, "run", m)
		out := run12faIn(t, dir, "resume", "--rerun-interrupted")
		step, runStatus := fetchStatus(t, dir)
		if step.Status != "failed" || step.Cause != "http_outcome_unknown" || runStatus != "paused" || posts.Load() != 1 {
			t.Fatalf("after resume: run %s, step %+v, %d POSTs\n%s", runStatus, step, posts.Load(), out)
		}
		t.Logf("kill -9 after the POST was sent, before its response was journaled, resume: %s, the server saw %d POST", step.Cause, posts.Load())
	})
}

// TestReplayDiverged: a step whose requests change from one attempt to
// the next (here the attempt number is in the URL) goes live at the first
// difference when the earlier request was a GET, and stops with
// replay_diverged (the run pauses) when it was a POST.
func TestReplayDiverged(t *testing.T) {
	var gets, posts atomic.Int64
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		} else {
			gets.Add(1)
		}
		fmt.Fprint(w, r.URL.RawQuery)
	})
	allow := fmt.Sprintf("hosts = [%q]\nprivate = [\"127.0.0.1\"]", s.URL)
	for _, method := range []string{"GET", "POST"} {
		dir, m := replayProject(t, fmt.Sprintf(`{ ask = "Go on?", vary = true, requests = [{ method = %q, url = %q }] }`, method, s.URL+"/x"), allow)
		run12faIn(t, dir, "run", m)
		out := respondAll(t, dir, "yes") + run12faIn(t, dir, "resume")
		step, runStatus := fetchStatus(t, dir)
		switch method {
		case "GET":
			if step.Status != "completed" || fetchedBody(t, step) != "attempt=2" || gets.Load() != 2 {
				t.Errorf("GET: %+v, %d GETs\n%s", step, gets.Load(), out)
			}
		case "POST":
			if step.Cause != "replay_diverged" || runStatus != "paused" || posts.Load() != 1 {
				t.Errorf("POST: run %s, %+v, %d POSTs\n%s", runStatus, step, posts.Load(), out)
			}
		}
	}
}
