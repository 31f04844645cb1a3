// Package statetest is the conformance suite every state.Store must pass:
// what the engine relies on of a store, checked the same way for the file
// store and for any other (a database shared by many workers).
//
// An implementation's test calls Run with a Harness that makes and opens
// stores of its kind:
//
//	func TestConformance(t *testing.T) {
//		statetest.Run(t, statetest.Harness{New: …, Open: …})
//	}
//
// The crash check runs the test binary again as a child that appends
// records and is killed with SIGKILL at random moments; Run recognizes the
// child by its environment and does the child's work instead of the
// suite's.
package statetest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/12fa/12fa/state"
)

// Harness makes and opens the stores the suite checks.
type Harness struct {
	// New returns where a new, empty store is (a directory, a database
	// URL with a fresh schema). It is called in the test process only.
	New func(t *testing.T) string
	// Open opens the store at loc for writing. It is also called in the
	// crash check's child process.
	Open func(t testing.TB, loc string) (state.Store, error)
	// Tear, when set, damages the end of the closed store at loc as a
	// crash in the middle of a write would (half a record); stores that
	// cannot be torn (a database's own log) leave it nil.
	Tear func(t *testing.T, loc string)
	// AtKill, when set, is called just after each kill of the crash
	// check's child and says what the store was doing ("" for nothing in
	// particular, "compacting"…), for the counts the check logs.
	AtKill func(loc string) string
	// KillWhen, when set, picks the moment of every other kill: the
	// check polls it and kills as soon as it is true (a compaction under
	// way), or at the usual random moment if it never is.
	KillWhen func(loc string) bool
	// Kills is how many times the crash check kills its child (10 when 0).
	Kills int
}

const childEnv = "STATETEST_CRASH_CHILD"

// Run runs the suite against h's stores, each check a subtest.
func Run(t *testing.T, h Harness) {
	if loc := os.Getenv(childEnv); loc != "" {
		crashChild(t, h, loc)
		return
	}
	checks := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"AppendThenRead", appendThenRead},
		{"RefusedBatchLeavesNoTrace", refusedBatch},
		{"LargeRecords", largeRecords},
		{"ConcurrentAppends", concurrentAppends},
		{"Claims", claims},
		{"ListRecentFirst", listRecentFirst},
		{"FinishedRunTakenUpAgain", finishedRunTakenUp},
		{"Blobs", blobs},
		{"Prune", prune},
		{"TornTail", tornTail},
		{"KilledWriterLosesNothing", crash},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

func open(t testing.TB, h Harness, loc string) state.Store {
	t.Helper()
	s, err := h.Open(t, loc)
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	return s
}

func steps(n int) []state.StepDecl {
	d := make([]state.StepDecl, n)
	for i := range d {
		d[i] = state.StepDecl{ID: fmt.Sprintf("s%02d", i), Plugin: "p"}
	}
	return d
}

func mustAppend(t testing.TB, s state.Store, recs ...*state.Record) {
	t.Helper()
	if err := s.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
}

// complete journals one attempt of step of run that completed with out.
func complete(t testing.TB, s state.Store, run, step string, out string) {
	t.Helper()
	if err := s.AppendLazy(context.Background(), &state.Record{Type: state.EventStepStarted, Run: run, Step: step, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, &state.Record{Type: state.EventStepCompleted, Run: run, Step: step, Attempt: 1, Output: json.RawMessage(out),
		Context: map[string]json.RawMessage{"last": json.RawMessage(`"` + step + `"`)}})
}

func mustRun(t testing.TB, s state.Store, id string) state.Run {
	t.Helper()
	r, err := s.Run(id)
	if err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	return r
}

// appendThenRead: what is appended reads back folded, before and after a
// reopen, with Seq and Time filled in.
func appendThenRead(t *testing.T, h Harness) {
	loc := h.New(t)
	s := open(t, h, loc)
	start := &state.Record{Type: state.EventRunStarted, Run: "r1", Workflow: "w", Manifest: "/m.toml", Steps: steps(3)}
	mustAppend(t, s, start)
	if start.Seq == 0 || start.Time.IsZero() {
		t.Fatalf("Append left seq %d, time %s", start.Seq, start.Time)
	}
	complete(t, s, "r1", "s00", `{"n":0}`)
	complete(t, s, "r1", "s01", `{"n":1}`)
	check := func(s state.Store) {
		t.Helper()
		r := mustRun(t, s, "r1")
		if r.Workflow != "w" || r.Manifest != "/m.toml" || r.Status != state.RunRunning || len(r.Steps) != 3 {
			t.Fatalf("run %+v", r)
		}
		if r.Steps[0].Status != state.StepCompleted || string(r.Steps[1].Output) != `{"n":1}` || r.Steps[2].Status != state.StepPending {
			t.Fatalf("steps %+v", r.Steps)
		}
		if string(r.Context["last"]) != `"s01"` {
			t.Fatalf("context %s", r.Context)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, h, loc)
	defer s.Close()
	check(s)
	if _, err := s.Run("nope"); !errors.Is(err, state.ErrUnknownRun) {
		t.Fatalf("Run of an unknown id: %v, want ErrUnknownRun", err)
	}
}

// refusedBatch: a batch the fold refuses is refused whole, and a reopen
// shows nothing of it.
func refusedBatch(t *testing.T, h Harness) {
	loc := h.New(t)
	s := open(t, h, loc)
	mustAppend(t, s, &state.Record{Type: state.EventRunStarted, Run: "r1", Workflow: "w", Steps: steps(2)})
	bad := [][]*state.Record{
		{{Type: state.EventStepStarted, Run: "r1", Step: "s00", Attempt: 1}, {Type: state.EventStepStarted, Run: "r1", Step: "nope"}},
		{{Type: state.EventStepStarted, Run: "r1", Step: "s00", Attempt: 1}, {Type: state.EventStepStarted, Run: "nope", Step: "s00"}},
		{{Type: state.EventRunStarted, Run: "r1", Steps: steps(1)}},
		{{Type: state.EventRunStarted, Run: "r2", Steps: []state.StepDecl{{ID: "a"}, {ID: "a"}}}},
		{{Type: state.EventRunStarted, Run: "../escape", Steps: steps(1)}},
		{{Type: "frobnicate", Run: "r1"}},
		{{Type: state.EventRunState, Run: "r1", State: &state.Run{ID: "r1"}}},
	}
	for i, batch := range bad {
		if err := s.Append(context.Background(), batch...); err == nil {
			t.Fatalf("batch %d accepted", i)
		}
	}
	if r := mustRun(t, s, "r1"); r.Steps[0].Status != state.StepPending || r.Steps[0].Attempt != 0 {
		t.Fatalf("a refused batch changed the run: %+v", r.Steps[0])
	}
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	if r := mustRun(t, s, "r1"); r.Steps[0].Status != state.StepPending {
		t.Fatalf("a refused batch reached the store: %+v", r.Steps[0])
	}
	if _, err := s.Run("r2"); !errors.Is(err, state.ErrUnknownRun) {
		t.Fatalf("run r2 of a refused batch: %v", err)
	}
}

// largeRecords: a record just under MaxRecordBytes is kept whole; one over
// it is refused with ErrRecordTooLarge and the store goes on.
func largeRecords(t *testing.T, h Harness) {
	loc := h.New(t)
	s := open(t, h, loc)
	mustAppend(t, s, &state.Record{Type: state.EventRunStarted, Run: "r1", Workflow: "w", Steps: steps(2)})
	big := `"` + strings.Repeat("x", state.MaxRecordBytes-4096) + `"`
	complete(t, s, "r1", "s00", big)
	over := &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "s01", Attempt: 1,
		Output: json.RawMessage(`"` + strings.Repeat("y", state.MaxRecordBytes) + `"`)}
	if err := s.Append(context.Background(), over); !errors.Is(err, state.ErrRecordTooLarge) {
		t.Fatalf("a record over the limit: %v, want ErrRecordTooLarge", err)
	}
	complete(t, s, "r1", "s01", `"small"`)
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	r := mustRun(t, s, "r1")
	if len(r.Steps[0].Output) != len(big) || string(r.Steps[1].Output) != `"small"` {
		t.Fatalf("read back %d and %q", len(r.Steps[0].Output), r.Steps[1].Output)
	}
}

// concurrentAppends: many writers at once; each one's records come back in
// its order, and they share the cost of durability.
func concurrentAppends(t *testing.T, h Harness) {
	const writers, n = 16, 30
	loc := h.New(t)
	s := open(t, h, loc)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			run := fmt.Sprintf("w%02d", w)
			if err := s.Append(context.Background(), &state.Record{Type: state.EventRunStarted, Run: run, Workflow: "w", Steps: steps(n)}); err != nil {
				errs <- err
				return
			}
			for i := range n {
				step := fmt.Sprintf("s%02d", i)
				if err := s.AppendLazy(context.Background(), &state.Record{Type: state.EventStepStarted, Run: run, Step: step, Attempt: 1}); err != nil {
					errs <- err
					return
				}
				if err := s.Append(context.Background(), &state.Record{Type: state.EventStepCompleted, Run: run, Step: step, Attempt: 1,
					Output: json.RawMessage(fmt.Sprintf(`[%d,%d]`, w, i))}); err != nil {
					errs <- err
					return
				}
			}
			if w%2 == 0 {
				errs <- s.Append(context.Background(), &state.Record{Type: state.EventRunCompleted, Run: run})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	durable := uint64(writers * (n + 1))
	if st := s.Stats(); st.Syncs >= durable {
		t.Errorf("%d syncs for %d durable appends: writers do not share them", st.Syncs, durable)
	}
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	for w := range writers {
		r := mustRun(t, s, fmt.Sprintf("w%02d", w))
		for i, st := range r.Steps {
			if st.Status != state.StepCompleted || string(st.Output) != fmt.Sprintf(`[%d,%d]`, w, i) {
				t.Fatalf("writer %d step %d: %+v", w, i, st)
			}
		}
		if want := map[bool]state.RunStatus{true: state.RunCompleted, false: state.RunRunning}[w%2 == 0]; r.Status != want {
			t.Fatalf("writer %d run %s, want %s", w, r.Status, want)
		}
	}
}

// claims: one executor per run.
func claims(t *testing.T, h Harness) {
	s := open(t, h, h.New(t))
	defer s.Close()
	if err := s.Claim("r1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim("r1"); !errors.Is(err, state.ErrClaimed) {
		t.Fatalf("second claim: %v, want ErrClaimed", err)
	}
	if err := s.Claim("r2"); err != nil {
		t.Fatal(err)
	}
	if n := s.Claimed(); n != 2 {
		t.Fatalf("Claimed() = %d, want 2", n)
	}
	s.Release("r1")
	if err := s.Claim("r1"); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

// listRecentFirst: List pages through many runs, finished and not, the
// most recently active first, with its filters, before and after a
// reopen.
func listRecentFirst(t *testing.T, h Harness) {
	loc := h.New(t)
	s := open(t, h, loc)
	const n = 60
	for i := range n {
		id := fmt.Sprintf("r%03d", i)
		wf := []string{"build", "deploy"}[i%2]
		mustAppend(t, s, &state.Record{Type: state.EventRunStarted, Run: id, Workflow: wf, Steps: steps(1)})
		complete(t, s, id, "s00", `1`)
		switch i % 3 {
		case 0:
			mustAppend(t, s, &state.Record{Type: state.EventRunCompleted, Run: id})
		case 1:
			mustAppend(t, s, &state.Record{Type: state.EventRunFailed, Run: id, Cause: "plugin_error", Error: "boom"})
		}
		time.Sleep(time.Millisecond) // distinct update times
	}
	check := func(s state.Store) {
		t.Helper()
		page, err := s.List(state.ListOptions{Limit: 5})
		if err != nil || len(page) != 5 {
			t.Fatalf("first page: %d runs, %v", len(page), err)
		}
		for i, info := range page {
			if want := fmt.Sprintf("r%03d", n-1-i); info.ID != want {
				t.Fatalf("page[%d] = %s, want %s", i, info.ID, want)
			}
		}
		if page[0].Steps != 1 || page[0].Done != 1 {
			t.Fatalf("info %+v", page[0])
		}
		all, err := s.List(state.ListOptions{})
		if err != nil || len(all) != n {
			t.Fatalf("all: %d runs, %v", len(all), err)
		}
		failed, err := s.List(state.ListOptions{Status: []state.RunStatus{state.RunFailed}, Workflow: "build"})
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range failed {
			if info.Status != state.RunFailed || info.Workflow != "build" || info.Cause != "plugin_error" {
				t.Fatalf("filtered %+v", info)
			}
		}
		if len(failed) != 10 { // i%3 == 1 and i%2 == 0: i = 4, 10, …, 58
			t.Fatalf("%d failed build runs, want 10", len(failed))
		}
		running, err := s.List(state.ListOptions{Status: []state.RunStatus{state.RunRunning}})
		if err != nil || len(running) != n/3 {
			t.Fatalf("%d running, want %d (%v)", len(running), n/3, err)
		}
	}
	check(s)
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	check(s)
}

// finishedRunTakenUp: a finished run (failed) goes on where it stopped
// when records come for it again, after a reopen too.
func finishedRunTakenUp(t *testing.T, h Harness) {
	loc := h.New(t)
	s := open(t, h, loc)
	mustAppend(t, s, &state.Record{Type: state.EventRunStarted, Run: "r1", Workflow: "w", Steps: steps(2)})
	complete(t, s, "r1", "s00", `"first"`)
	mustAppend(t, s, &state.Record{Type: state.EventStepFailed, Run: "r1", Step: "s01", Attempt: 1, Cause: "plugin_error", Error: "boom"},
		&state.Record{Type: state.EventRunFailed, Run: "r1", Cause: "plugin_error", Error: "boom"})
	s.Close()
	s = open(t, h, loc)
	mustAppend(t, s, &state.Record{Type: state.EventRunResumed, Run: "r1"})
	complete(t, s, "r1", "s01", `"second"`)
	mustAppend(t, s, &state.Record{Type: state.EventRunCompleted, Run: "r1"})
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	r := mustRun(t, s, "r1")
	if r.Status != state.RunCompleted || string(r.Steps[0].Output) != `"first"` || string(r.Steps[1].Output) != `"second"` {
		t.Fatalf("run %s, steps %+v", r.Status, r.Steps)
	}
	if err := s.Append(context.Background(), &state.Record{Type: state.EventRunStarted, Run: "r1", Steps: steps(1)}); err == nil {
		t.Fatal("a finished run was started again")
	}
}

// blobs: stored durably, read back checked, the same bytes stored once.
func blobs(t *testing.T, h Harness) {
	loc := h.New(t)
	s := open(t, h, loc)
	body := []byte(strings.Repeat("blob ", 100000))
	sha, err := s.PutBlob(body)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.PutBlob(body); err != nil || again != sha {
		t.Fatalf("same bytes: %s, %v (first %s)", again, err, sha)
	}
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	b, err := s.Blob(sha)
	if err != nil || string(b) != string(body) {
		t.Fatalf("blob read back: %d bytes, %v", len(b), err)
	}
	if _, err := s.Blob(strings.Repeat("0", 64)); err == nil {
		t.Fatal("a blob never stored was returned")
	}
}

// prune: finished runs older than the cut go, the Keep most recent stay,
// unfinished runs always stay, and also hears of each run removed.
func prune(t *testing.T, h Harness) {
	loc := h.New(t)
	s := open(t, h, loc)
	for i := range 10 {
		id := fmt.Sprintf("r%02d", i)
		mustAppend(t, s, &state.Record{Type: state.EventRunStarted, Run: id, Workflow: "w", Steps: steps(1)})
		complete(t, s, id, "s00", `1`)
		if i != 3 {
			mustAppend(t, s, &state.Record{Type: state.EventRunCompleted, Run: id})
		}
		time.Sleep(time.Millisecond)
	}
	cut := time.Now().Add(time.Hour)
	var told []string
	gone, err := s.Prune(state.PruneOptions{OlderThan: cut, Keep: 2}, func(ids []string) error {
		told = append(told, ids...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 7 || len(told) != 7 {
		t.Fatalf("pruned %d runs (told of %d), want 7: 9 finished, 2 kept", len(gone), len(told))
	}
	check := func(s state.Store) {
		t.Helper()
		for i := range 10 {
			id := fmt.Sprintf("r%02d", i)
			_, err := s.Run(id)
			kept := i == 3 || i >= 8
			if kept && err != nil {
				t.Fatalf("run %s was kept but reads %v", id, err)
			}
			if !kept && !errors.Is(err, state.ErrUnknownRun) {
				t.Fatalf("run %s was pruned but reads %v", id, err)
			}
		}
		all, err := s.List(state.ListOptions{})
		if err != nil || len(all) != 3 {
			t.Fatalf("%d runs listed after the prune, want 3 (%v)", len(all), err)
		}
	}
	check(s)
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	check(s)
}

// tornTail: a write cut short by a crash is dropped; what came before it
// stays and the store takes appends again.
func tornTail(t *testing.T, h Harness) {
	if h.Tear == nil {
		t.Skip("this store cannot be torn by hand (its own log handles crashes)")
	}
	loc := h.New(t)
	s := open(t, h, loc)
	mustAppend(t, s, &state.Record{Type: state.EventRunStarted, Run: "r1", Workflow: "w", Steps: steps(3)})
	complete(t, s, "r1", "s00", `0`)
	s.Close()
	h.Tear(t, loc)
	s = open(t, h, loc)
	complete(t, s, "r1", "s01", `1`)
	s.Close()
	s = open(t, h, loc)
	defer s.Close()
	r := mustRun(t, s, "r1")
	if r.Steps[0].Status != state.StepCompleted || r.Steps[1].Status != state.StepCompleted || r.Steps[2].Status != state.StepPending {
		t.Fatalf("after a torn tail: %+v", r.Steps)
	}
}

// crash: a child appends and says what became durable; it is killed with
// SIGKILL at random moments, again and again on the same store. Every
// record it said was durable is there after each kill, every run's
// completed steps are a prefix of its steps, and the store opens each
// time.
func crash(t *testing.T, h Harness) {
	if testing.Short() {
		t.Skip("kills processes; not in -short")
	}
	loc := h.New(t)
	kills := h.Kills
	if kills == 0 {
		kills = 10
	}
	durable := map[string]int{} // run → steps said durable
	what := map[string]int{}
	for round := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^"+strings.Split(t.Name(), "/")[0]+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+loc, "STATETEST_ROUND="+fmt.Sprint(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill once the child has made some progress, at a random moment.
		deadline := time.After(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		progressed := false
	wait:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break wait
				}
				var run string
				var step int
				if _, err := fmt.Sscanf(l, "durable %s %d", &run, &step); err == nil {
					durable[run] = max(durable[run], step+1)
					progressed = true
				}
			case <-deadline:
				if progressed {
					break wait
				}
				deadline = time.After(10 * time.Millisecond)
			}
		}
		if h.KillWhen != nil && round%2 == 1 {
			drain := make(chan struct{})
			go func() {
				defer close(drain)
				for l := range lines {
					var run string
					var step int
					if _, err := fmt.Sscanf(l, "durable %s %d", &run, &step); err == nil {
						durable[run] = max(durable[run], step+1)
					}
				}
			}()
			for end := time.Now().Add(time.Second); time.Now().Before(end) && !h.KillWhen(loc); {
				time.Sleep(50 * time.Microsecond)
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			if h.AtKill != nil {
				what[h.AtKill(loc)]++
			}
			<-drain
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		if h.AtKill != nil && (h.KillWhen == nil || round%2 == 0) {
			what[h.AtKill(loc)]++
		}
		for l := range lines {
			var run string
			var step int
			if _, err := fmt.Sscanf(l, "durable %s %d", &run, &step); err == nil {
				durable[run] = max(durable[run], step+1)
			}
		}
		_ = cmd.Wait()
		s := open(t, h, loc)
		for run, n := range durable {
			r := mustRun(t, s, run)
			done := 0
			for i, st := range r.Steps {
				if st.Status == state.StepCompleted {
					if i != done {
						t.Fatalf("round %d: run %s has step %d completed after %d completed steps", round, run, i, done)
					}
					done++
				}
			}
			if done < n {
				t.Fatalf("round %d: run %s has %d completed steps; the child said %d were durable", round, run, done, n)
			}
		}
		s.Close()
	}
	t.Logf("%d kills, %d runs checked; at the kill: %v", kills, len(durable), what)
}

// crashChild is the crash check's child: it appends runs of steps, says
// on stdout what is durable, and finishes four runs in five, until
// killed.
func crashChild(t *testing.T, h Harness, loc string) {
	s := open(t, h, loc)
	round := os.Getenv("STATETEST_ROUND")
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		run := fmt.Sprintf("c%s-%04d", round, i)
		mustAppend(t, s, &state.Record{Type: state.EventRunStarted, Run: run, Workflow: "crash", Steps: steps(20)})
		for k := range 20 {
			complete(t, s, run, fmt.Sprintf("s%02d", k), fmt.Sprintf(`{"pad":%q}`, strings.Repeat("p", rand.IntN(3000))))
			fmt.Fprintf(w, "durable %s %d\n", run, k)
			w.Flush()
		}
		if i%5 != 0 {
			mustAppend(t, s, &state.Record{Type: state.EventRunCompleted, Run: run})
		}
	}
}
