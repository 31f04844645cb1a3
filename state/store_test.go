package state_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/12fa/12fa/state"
)

func open(t *testing.T, dir string) *state.FileStore {
	t.Helper()
	if err := state.Init(dir); err != nil {
		t.Fatal(err)
	}
	s, err := state.Open(state.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allRuns reads every run of s, the most recently active first.
func allRuns(t *testing.T, s *state.FileStore) []state.Run {
	t.Helper()
	infos, err := s.List(state.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var runs []state.Run
	for _, info := range infos {
		r, err := s.Run(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return runs
}

// twoSteps journals a run whose first step completed and whose second
// started.
func twoSteps(t *testing.T, s *state.FileStore) {
	t.Helper()
	ctx := context.Background()
	recs := []*state.Record{
		{Type: state.EventRunStarted, Run: "r1", Workflow: "w", Steps: []state.StepDecl{{ID: "a", Plugin: "p"}, {ID: "b", Plugin: "p"}}},
		{Type: state.EventStepStarted, Run: "r1", Step: "a", Attempt: 1},
		{Type: state.EventStepCompleted, Run: "r1", Step: "a", Attempt: 1, Output: []byte(`{"x":1}`)},
		{Type: state.EventStepStarted, Run: "r1", Step: "b", Attempt: 1},
	}
	for _, r := range recs {
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStore_Open_Replays(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	twoSteps(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	r, err := s.Run("r1")
	if err != nil {
		t.Fatalf("run r1 lost: %v", err)
	}
	a, _ := r.Step("a")
	b, _ := r.Step("b")
	if a.Status != state.StepCompleted || string(a.Output) != `{"x":1}` || b.Status != state.StepRunning {
		t.Fatalf("steps: a=%+v b=%+v", a, b)
	}
	if _, err := os.Stat(filepath.Join(dir, state.SnapshotFile)); err != nil {
		t.Fatalf("no snapshot after close: %v", err)
	}
}

func TestStore_Open_TornTail(t *testing.T) {
	tails := map[string]string{
		"half a record":  `{"seq":5,"time":"2026-01-01T00:00:00Z","type":"step_comp`,
		"zeros":          "\x00\x00\x00\x00\x00\x00\x00\x00",
		"garbage line":   "not json at all\n",
		"wrong sequence": `{"seq":9,"time":"2026-01-01T00:00:00Z","type":"run_completed","run":"r1"}` + "\n",
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), ".12fa")
			s := open(t, dir)
			twoSteps(t, s)
			s.Close()
			journal := filepath.Join(dir, state.JournalFile)
			good, _ := os.ReadFile(journal)
			appendFile(t, journal, tail)

			var logs bytes.Buffer
			s, err := state.Open(state.Config{Dir: dir}, hclog.New(&hclog.LoggerOptions{Output: &logs}))
			if err != nil {
				t.Fatalf("torn tail is fatal: %v", err)
			}
			if !strings.Contains(logs.String(), "dropping torn journal tail") {
				t.Fatalf("no warning: %q", logs.String())
			}
			// The tail is cut, and the next record lands after the last good one.
			if err := s.Append(context.Background(), &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "b", Attempt: 1}); err != nil {
				t.Fatal(err)
			}
			now, _ := os.ReadFile(journal)
			if !bytes.HasPrefix(now, good) || bytes.Count(now, []byte("\n")) != bytes.Count(good, []byte("\n"))+1 {
				t.Fatalf("journal after the torn tail:\n%s", now)
			}
			s.Close()
			s = open(t, dir)
			defer s.Close()
			if r, _ := s.Run("r1"); r.Steps[1].Status != state.StepCompleted {
				t.Fatalf("step b is %s", r.Steps[1].Status)
			}
		})
	}
}

func TestStore_Open_CorruptMiddleIsAnError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	twoSteps(t, s)
	s.Close()
	journal := filepath.Join(dir, state.JournalFile)
	b, _ := os.ReadFile(journal)
	// Closed, the journal is compacted: its base record, then the run's
	// state. A broken base is followed by a good record.
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) < 2 {
		t.Fatalf("journal of %d lines", len(lines))
	}
	lines[0] = []byte("{broken\n")
	corrupt := bytes.Join(lines, nil)
	if err := os.WriteFile(journal, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := state.Open(state.Config{Dir: dir}, nil)
	if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), state.JournalFile+":1:") {
		t.Fatalf("err = %v, want ErrCorrupt naming line 1", err)
	}
	after, _ := os.ReadFile(journal)
	if !bytes.Equal(after, corrupt) {
		t.Fatal("a corrupt journal was modified")
	}
}

func TestStore_Open_LockedByAnother(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	defer s.Close()
	_, err := state.Open(state.Config{Dir: dir}, nil)
	if !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("err = %v", err)
	}
	// Readers need no lock.
	ro, err := state.Open(state.Config{Dir: dir, ReadOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
}

func TestStore_Append_RefusesNonsense(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	defer s.Close()
	tests := []struct {
		name string
		rec  *state.Record
	}{
		{"unknown run", &state.Record{Type: state.EventStepStarted, Run: "nope", Step: "a"}},
		{"unknown type", &state.Record{Type: "frobnicate", Run: "nope"}},
		{"duplicate steps", &state.Record{Type: state.EventRunStarted, Run: "r", Steps: []state.StepDecl{{ID: "a"}, {ID: "a"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Append(context.Background(), tc.rec); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	b, _ := os.ReadFile(filepath.Join(dir, state.JournalFile))
	if len(b) != 0 {
		t.Fatalf("refused records reached the journal: %s", b)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func FuzzStore_Open(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","type":"run_started","run":"r","steps":[{"id":"a","plugin":"p"}]}` + "\n"))
	f.Add([]byte("{}\n{}\n"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := filepath.Join(t.TempDir(), ".12fa")
		if err := state.Init(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, state.JournalFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := state.Open(state.Config{Dir: dir}, nil)
		if err != nil {
			return
		}
		allRuns(t, s)
		s.Close()
	})
}

// TestStore_Append_GroupCommitHammer has many goroutines append to their own
// runs at once: every record must come back in order after a reopen, and
// fsyncs must be shared.
func TestStore_Append_GroupCommitHammer(t *testing.T) {
	const writers, steps = 32, 40
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := fmt.Sprintf("r%02d", w)
			decl := make([]state.StepDecl, steps)
			for i := range decl {
				decl[i] = state.StepDecl{ID: fmt.Sprintf("s%02d", i), Plugin: "p"}
			}
			if err := s.Append(context.Background(), &state.Record{Type: state.EventRunStarted, Run: run, Steps: decl}); err != nil {
				errs <- err
				return
			}
			for i := range steps {
				id := fmt.Sprintf("s%02d", i)
				if err := s.AppendLazy(context.Background(), &state.Record{Type: state.EventStepStarted, Run: run, Step: id, Attempt: 1}); err != nil {
					errs <- err
					return
				}
				out := []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				if err := s.Append(context.Background(), &state.Record{Type: state.EventStepCompleted, Run: run, Step: id, Attempt: 1, Output: out}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if want := uint64(writers * (1 + 2*steps)); st.Records != want {
		t.Fatalf("%d records, want %d", st.Records, want)
	}
	if st.Syncs >= uint64(writers*(steps+1)) {
		t.Errorf("%d fsyncs for %d durable appends: no group commit", st.Syncs, writers*(steps+1))
	}
	t.Logf("%d records, %d writes, %d fsyncs", st.Records, st.Writes, st.Syncs)
	s.Close()

	s = open(t, dir)
	defer s.Close()
	for w := range writers {
		r, err := s.Run(fmt.Sprintf("r%02d", w))
		if err != nil {
			t.Fatalf("run %d lost: %v", w, err)
		}
		for i, step := range r.Steps {
			if step.Status != state.StepCompleted || string(step.Output) != fmt.Sprintf(`{"w":%d,"i":%d}`, w, i) {
				t.Fatalf("run %d step %d: %+v", w, i, step)
			}
		}
	}
}
