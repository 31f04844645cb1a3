package state_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/12fa/12fa/state"
)

// TestHostCalls: a step's recorded calls survive a reopen (a crash), a
// call's result replaces its recorded start, and they are dropped when an
// attempt fails or the step completes.
func TestHostCalls(t *testing.T) {
	dir := filepath.Join(t.TempDir(), state.DirName)
	s := open(t, dir)
	ctx := context.Background()
	call := func(seq int, result string) *state.HostCall {
		c := &state.HostCall{Seq: seq, Kind: "http", Key: "k", Method: "POST"}
		if result != "" {
			c.Result = []byte(result)
		}
		return c
	}
	must(t, s.Append(ctx,
		&state.Record{Type: state.EventRunStarted, Run: "r", Workflow: "w", Steps: []state.StepDecl{{ID: "a", Plugin: "p"}}},
		&state.Record{Type: state.EventStepStarted, Run: "r", Step: "a", Attempt: 1},
		&state.Record{Type: state.EventHostCallStarted, Run: "r", Step: "a", Attempt: 1, Call: call(0, "")},
		&state.Record{Type: state.EventHostCall, Run: "r", Step: "a", Attempt: 1, Call: call(0, `{"status":200}`)},
		&state.Record{Type: state.EventHostCallStarted, Run: "r", Step: "a", Attempt: 1, Call: call(1, "")},
	))
	before, _ := s.Run("r")
	must(t, s.Close())
	s, err := state.Open(state.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := s.Run("r")
	calls := r.Steps[0].Calls
	if len(calls) != 2 || string(calls[0].Result) != `{"status":200}` || calls[1].Result != nil || calls[1].Seq != 1 {
		t.Fatalf("calls after reopen: %+v", calls)
	}
	if len(before.Steps[0].Calls) != 2 {
		t.Errorf("a clone taken earlier changed: %+v", before.Steps[0].Calls)
	}
	if err := s.Append(ctx, &state.Record{Type: state.EventHostCall, Run: "r", Step: "a", Attempt: 1}); err == nil {
		t.Error("a host_call record without a call was accepted")
	}
	must(t, s.Append(ctx, &state.Record{Type: state.EventStepFailed, Run: "r", Step: "a", Attempt: 1, Cause: "timeout"}))
	if r, _ := s.Run("r"); r.Steps[0].Calls != nil {
		t.Errorf("calls after a failed attempt: %+v", r.Steps[0].Calls)
	}
	must(t, s.Append(ctx,
		&state.Record{Type: state.EventStepStarted, Run: "r", Step: "a", Attempt: 2},
		&state.Record{Type: state.EventHostCall, Run: "r", Step: "a", Attempt: 2, Call: call(0, `{}`)},
		&state.Record{Type: state.EventStepCompleted, Run: "r", Step: "a", Attempt: 2, Output: []byte(`1`)}))
	if r, _ := s.Run("r"); r.Steps[0].Calls != nil {
		t.Errorf("calls after completion: %+v", r.Steps[0].Calls)
	}
	must(t, s.Close())
}

func TestBlobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), state.DirName)
	s := open(t, dir)
	defer s.Close()
	sha, err := s.PutBlob([]byte("a large body"))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.PutBlob([]byte("a large body")); again != sha {
		t.Errorf("same bytes, two names: %s %s", sha, again)
	}
	if b, err := s.Blob(sha); err != nil || string(b) != "a large body" {
		t.Fatalf("Blob: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, state.BlobsDir, sha), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blob(sha); !errors.Is(err, state.ErrBlobCorrupt) {
		t.Errorf("a tampered blob: %v", err)
	}
	if _, err := s.Blob("../../etc/passwd"); !errors.Is(err, state.ErrBlobCorrupt) {
		t.Errorf("a bad name: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
