package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

func undoable(id string, input map[string]any) manifest.Step {
	s := flaky(id, true, input, fast(1))
	s.Rollback = "undo"
	return s
}

// rollbacks records the order of rollback attempts.
type rollbacks struct {
	mu    sync.Mutex
	order []string
}

func (r *rollbacks) event(e runtime.Event) {
	if e.Type == runtime.EventRollbackStarted {
		r.mu.Lock()
		r.order = append(r.order, e.Step)
		r.mu.Unlock()
	}
}

func (r *rollbacks) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.order, ",")
}

// openWith opens a runtime whose events go to onEvent, with a context to
// run it in and its cancel function.
func (f *fixture) openWith(onEvent func(runtime.Event)) (*runtime.Runtime, context.Context, context.CancelFunc) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.t.Context())
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: f.project, CacheDir: f.cache, OnEvent: onEvent})
	if err != nil {
		f.t.Fatal(err)
	}
	return rt, ctx, cancel
}

func sagaSteps() []manifest.Step {
	failing := undoable("d", map[string]any{"fail": true})
	failing.OnFailure = manifest.OnFailureRollback
	plain := effect("b", true, nil) // no rollback export named: passed over
	return []manifest.Step{undoable("a", nil), plain, undoable("c", nil), failing, undoable("e", nil)}
}

func TestRuntime_Rollback_Saga(t *testing.T) {
	f := newFixture(t)
	var rb rollbacks
	rt, _, cancel := f.openWith(rb.event)
	defer cancel()
	defer rt.Close(t.Context())
	res, err := rt.Run(t.Context(), f.manifest(sagaSteps()...), runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrRolledBack) || !errors.Is(err, runtime.ErrStepFailed) {
		t.Fatalf("err = %v", err)
	}
	if res.Status != state.RunRolledBack {
		t.Fatalf("run is %s", res.Status)
	}
	// The failed step first, then the completed ones in reverse; b has no
	// rollback and e never ran.
	if got := rb.String(); got != "d,c,a" {
		t.Fatalf("rollback order %s, want d,c,a", got)
	}
	for _, s := range res.Steps {
		want := state.RollbackStatus("")
		if s.ID == "a" || s.ID == "c" || s.ID == "d" {
			want = state.RollbackCompleted
		}
		if s.Rollback != want {
			t.Errorf("step %s rollback %q, want %q", s.ID, s.Rollback, want)
		}
	}
}

func TestRuntime_Rollback_Fails(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	steps := sagaSteps()
	steps[2] = undoable("c", map[string]any{"undo_fail": true})
	res, err := rt.Run(t.Context(), f.manifest(steps...), runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrRollbackFailed) {
		t.Fatalf("err = %v", err)
	}
	if res.Status != state.RunRollbackFailed || res.Steps[2].Rollback != state.RollbackFailed || res.Steps[0].Rollback != "" {
		t.Fatalf("run %s, c rollback %q, a rollback %q", res.Status, res.Steps[2].Rollback, res.Steps[0].Rollback)
	}
	// A later Run does not go forward on a run whose rollback failed.
	if _, err := rt.Run(t.Context(), f.manifest(steps...), runtime.RunOptions{RunID: res.RunID}); err == nil ||
		!strings.Contains(err.Error(), "rollback_failed") {
		t.Fatalf("run after a failed rollback: %v", err)
	}
}

// TestRuntime_Rollback_ResumesAfterCrash: a process that dies inside a
// rollback leaves the run rolling back; the next one finishes the rollback
// (the interrupted one again, the completed ones not) and never goes
// forward.
func TestRuntime_Rollback_ResumesAfterCrash(t *testing.T) {
	f := newFixture(t)
	m := f.manifest(sagaSteps()...)
	var cancel context.CancelFunc
	var rt *runtime.Runtime
	var ctx context.Context
	var first rollbacks
	rt, ctx, cancel = f.openWith(func(e runtime.Event) {
		first.event(e)
		if e.Type == runtime.EventRollbackStarted && e.Step == "c" {
			cancel()
		}
	})
	_, err := rt.Run(ctx, m, runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrCanceled) {
		t.Fatalf("err = %v", err)
	}
	rt.Close(context.Background())

	var second rollbacks
	rt, _, cancel = f.openWith(second.event)
	defer cancel()
	defer rt.Close(t.Context())
	f.ran()
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunRolledBack || first.String() != "d,c" || second.String() != "c,a" {
		t.Fatalf("run %s; rollbacks before the crash %s, after %s", res.Status, first.String(), second.String())
	}
	if ran := f.ran(); len(ran) != 0 {
		t.Fatalf("steps ran forward after the crash: %v", ran)
	}
}

// TestRuntime_Rollback_CrashDuringBackoff: a rollback that failed waits for
// its next attempt on the schedule it journaled, as a step's retry does; a
// process stopped during that wait leaves the schedule in the store, and the
// next one waits for it and goes on with the attempts the series had left,
// instead of starting a fresh series at once.
func TestRuntime_Rollback_CrashDuringBackoff(t *testing.T) {
	f := newFixture(t)
	failing := undoable("b", map[string]any{"fail": true})
	failing.OnFailure = manifest.OnFailureRollback
	first := undoable("a", map[string]any{"undo_fail_until_attempt": 4})
	first.Retry = &manifest.Retry{MaxAttempts: 3, InitialInterval: manifest.Duration(400 * time.Millisecond), Jitter: 0.01}
	m := f.manifest(first, failing)

	var undoA []int
	var cancel context.CancelFunc
	rt, ctx, cancel := f.openWith(func(e runtime.Event) {
		if e.Type == runtime.EventRollbackFailed && e.Step == "a" && e.RetryIn > 0 {
			cancel() // "crash" while waiting for the rollback's attempt 2
		}
	})
	if _, err := rt.Run(ctx, m, runtime.RunOptions{}); !errors.Is(err, runtime.ErrCanceled) {
		t.Fatalf("err = %v, want the rollback stopped while waiting", err)
	}
	rt.Close(context.Background())
	infos, err := f.view().Runs(state.ListOptions{})
	if err != nil || len(infos) != 1 || infos[0].Status != state.RunRollingBack {
		t.Fatalf("runs %+v, %v: want one rolling back", infos, err)
	}
	a := mustRun(t, f, infos[0].ID).Steps[0]
	if a.RollbackNextAt.IsZero() || a.RollbackAttemptsLeft != 2 || a.RollbackAttempt != 1 {
		t.Fatalf("step a's rollback: attempt %d, next at %s, %d left: want its schedule journaled", a.RollbackAttempt, a.RollbackNextAt, a.RollbackAttemptsLeft)
	}

	rt, ctx, _ = f.openWith(func(e runtime.Event) {
		if e.Type == runtime.EventRollbackStarted && e.Step == "a" {
			undoA = append(undoA, e.Attempt)
			if e.Attempt == 2 && time.Now().Before(a.RollbackNextAt) {
				t.Errorf("attempt 2 of a's rollback started at %s, before its schedule %s", time.Now(), a.RollbackNextAt)
			}
		}
	})
	defer rt.Close(t.Context())
	res, err := rt.Run(ctx, m, runtime.RunOptions{RunID: infos[0].ID})
	// Attempts 2 and 3, the series' last, fail: the rollback fails. A
	// fresh series would have allowed three from attempt 2 on, and the
	// fourth attempt would have succeeded.
	if !errors.Is(err, runtime.ErrRollbackFailed) || res.Status != state.RunRollbackFailed {
		t.Fatalf("resume: %v, run %v", err, res.Status)
	}
	if fmt.Sprint(undoA) != "[2 3]" || res.Steps[0].Rollback != state.RollbackFailed || res.Steps[0].RollbackAttempt != 3 {
		t.Fatalf("rollback of a after the resume: attempts %v, %s at attempt %d", undoA, res.Steps[0].Rollback, res.Steps[0].RollbackAttempt)
	}
}
