package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// fast is a retry policy with short waits, so tests stay quick.
func fast(maxAttempts int) *manifest.Retry {
	return &manifest.Retry{MaxAttempts: maxAttempts, InitialInterval: manifest.Duration(10 * time.Millisecond),
		MaxInterval: manifest.Duration(40 * time.Millisecond), Backoff: 2, Jitter: 0.1}
}

func flaky(id string, idempotent bool, input map[string]any, pol *manifest.Retry) manifest.Step {
	s := effect(id, idempotent, input)
	s.Retry = pol
	return s
}

func TestRuntime_Retry(t *testing.T) {
	tests := []struct {
		name        string
		step        manifest.Step
		wantErr     error
		wantStatus  state.RunStatus
		wantAttempt int
	}{
		{"idempotent step succeeds on its third attempt",
			flaky("s", true, map[string]any{"fail_until_attempt": 3}, fast(3)), nil, state.RunCompleted, 3},
		{"attempts run out: the run pauses",
			flaky("s", true, map[string]any{"fail_until_attempt": 9}, fast(3)), runtime.ErrRunPaused, state.RunPaused, 3},
		{"a step that is not idempotent is not retried",
			flaky("s", false, map[string]any{"fail_until_attempt": 2}, fast(3)), runtime.ErrRunPaused, state.RunPaused, 1},
		{"unless its policy says so",
			flaky("s", false, map[string]any{"fail_until_attempt": 2}, &manifest.Retry{MaxAttempts: 3, InitialInterval: manifest.Duration(time.Millisecond), NonIdempotent: true}),
			nil, state.RunCompleted, 2},
		{"a permanent error is not retried",
			flaky("s", true, map[string]any{"fail": true, "permanent": true}, fast(3)), runtime.ErrRunPaused, state.RunPaused, 1},
		{"nor a code listed in non_retryable", func() manifest.Step {
			s := flaky("s", true, map[string]any{"fail": true, "code": "quota"}, fast(3))
			s.NonRetryable = []string{"quota"}
			return s
		}(), runtime.ErrRunPaused, state.RunPaused, 1},
		{"total_timeout stops the retries", func() manifest.Step {
			s := flaky("s", true, map[string]any{"fail": true}, &manifest.Retry{MaxAttempts: 10, InitialInterval: manifest.Duration(300 * time.Millisecond)})
			s.TotalTimeout = manifest.Duration(500 * time.Millisecond)
			return s
		}(), runtime.ErrRunPaused, state.RunPaused, 2},
		{"on_failure fail ends the run failed", func() manifest.Step {
			s := flaky("s", true, map[string]any{"fail": true}, fast(2))
			s.OnFailure = manifest.OnFailureFail
			return s
		}(), runtime.ErrRunFailed, state.RunFailed, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rt := f.open()
			defer rt.Close(t.Context())
			res, err := rt.Run(t.Context(), f.manifest(tc.step), runtime.RunOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if res.Status != tc.wantStatus || res.Steps[0].Attempt != tc.wantAttempt {
				t.Fatalf("run %s at attempt %d, want %s at attempt %d", res.Status, res.Steps[0].Attempt, tc.wantStatus, tc.wantAttempt)
			}
			if got := len(f.ran()); got != tc.wantAttempt {
				t.Fatalf("%d attempts started, want %d", got, tc.wantAttempt)
			}
		})
	}
}

// TestRuntime_Retry_PausedRunResumes: a paused run is picked up by the next
// Run, which gives the step a fresh series of attempts.
func TestRuntime_Retry_PausedRunResumes(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	m := f.manifest(effect("a", true, nil), flaky("b", true, map[string]any{"fail_until_attempt": 3}, fast(2)))
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrRunPaused) {
		t.Fatalf("err = %v", err)
	}
	first := res.RunID
	res, err = rt.Run(t.Context(), m, runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID != first || res.Status != state.RunCompleted || res.Steps[1].Attempt != 3 || res.Replayed != 1 {
		t.Fatalf("resumed %s (first %s): %s, step b attempt %d, %d replayed", res.RunID, first, res.Status, res.Steps[1].Attempt, res.Replayed)
	}
}

// TestRuntime_Retry_CrashDuringBackoff: a process that dies while waiting
// to retry leaves the schedule in the journal; the next one waits for it
// and goes on with the next attempt and the attempts left, not from scratch.
func TestRuntime_Retry_CrashDuringBackoff(t *testing.T) {
	f := newFixture(t)
	pol := &manifest.Retry{MaxAttempts: 3, InitialInterval: manifest.Duration(400 * time.Millisecond), Jitter: 0.01}
	m := f.manifest(flaky("s", true, map[string]any{"fail_until_attempt": 3}, pol))

	ctx, cancel := context.WithCancel(t.Context())
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: f.project, CacheDir: f.cache, OnEvent: func(e runtime.Event) {
		if e.Type == runtime.EventStepFailed && e.RetryIn > 0 {
			cancel() // "crash" while waiting for attempt 2
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Run(ctx, m, runtime.RunOptions{}); !errors.Is(err, runtime.ErrCanceled) {
		t.Fatalf("err = %v", err)
	}
	rt.Close(context.Background())
	// The schedule of attempt 2, as the store kept it.
	infos, err := f.view().Runs(state.ListOptions{})
	if err != nil || len(infos) != 1 {
		t.Fatalf("runs %v, %v", infos, err)
	}
	notBefore := mustRun(t, f, infos[0].ID).Steps[0].NextAttemptAt

	rt = f.open()
	defer rt.Close(t.Context())
	f.ran()
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Attempt 2 waited for its schedule, failed, attempt 3 succeeded: the
	// series kept its count (a fresh one would have allowed 3 more).
	if res.Steps[0].Attempt != 3 || len(f.ran()) != 2 {
		t.Fatalf("step at attempt %d after resume", res.Steps[0].Attempt)
	}
	// And attempt 2 started no earlier than its journaled schedule (the
	// journal of this process, not yet compacted, holds its start).
	b, err := os.ReadFile(filepath.Join(runtime.StoreDir(f.project), state.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	var started2 time.Time
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r state.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == state.EventStepStarted && r.Attempt == 2 {
			started2 = r.Time
		}
	}
	if notBefore.IsZero() || started2.Before(notBefore) {
		t.Fatalf("attempt 2 started at %s, its retry was scheduled for %s", started2, notBefore)
	}
}

// TestRuntime_TotalTimeoutCutsAnAttempt: total_timeout bounds the attempt
// that is running, not only the decision to retry.
func TestRuntime_TotalTimeoutCutsAnAttempt(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	s := manifest.Step{ID: "spin", Plugin: "loop.wasm", Idempotent: true, Retry: fast(3),
		Timeout: manifest.Duration(20 * time.Second), TotalTimeout: manifest.Duration(300 * time.Millisecond)}
	res, err := rt.Run(t.Context(), f.manifest(s), runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrRunPaused) {
		t.Fatalf("err = %v", err)
	}
	st := res.Steps[0]
	if st.Cause != "timeout" || st.DurationMS > 5000 {
		t.Fatalf("step stopped by %q after %.0f ms; total_timeout is 300ms, timeout 20s", st.Cause, st.DurationMS)
	}
}

// TestRuntime_InputTooLarge: an envelope over abi.MaxInputBytes fails the
// step without calling it, and is not retried.
func TestRuntime_InputTooLarge(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	s := flaky("big", true, map[string]any{"blob": strings.Repeat("x", 17<<20)}, fast(3))
	res, err := rt.Run(t.Context(), f.manifest(s), runtime.RunOptions{})
	var se *runtime.StepError
	if !errors.As(err, &se) || se.Cause != "input_too_large" || res.Steps[0].Attempt != 1 {
		t.Fatalf("err = %v, attempts %d", err, res.Steps[0].Attempt)
	}
}
