package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/internal/testutil"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// sharedCache lets the tests compile each plugin once.
var sharedCache string

func TestMain(m *testing.M) {
	os.Exit(testutil.MainWithTempDir(m, "12fa-runtime-cache-*", &sharedCache))
}

// fixture is a project directory with copies of the example plugins, so that
// a test may change a plugin's bytes.
type fixture struct {
	t       *testing.T
	project string
	cache   string
	events  []runtime.Event
	mu      sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, project: t.TempDir(), cache: sharedCache}
	for _, p := range []string{"effect/effect.wasm", "ask/ask.wasm", "wat/noop.wasm", "wat/trap.wasm", "wat/loop.wasm"} {
		dst := filepath.Join(f.project, "plugins", filepath.Base(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, testutil.MustReadExample(t, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) open() *runtime.Runtime {
	f.t.Helper()
	rt, err := runtime.New(f.t.Context(), runtime.Config{ProjectDir: f.project, CacheDir: f.cache,
		OnEvent: func(e runtime.Event) { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() }})
	if err != nil {
		f.t.Fatal(err)
	}
	return rt
}

// view opens a read-only view of the fixture's store, closed with the
// test.
func (f *fixture) view() *runtime.View {
	f.t.Helper()
	v, err := runtime.OpenView(f.project, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { v.Close() })
	return v
}

// ran returns the steps that were started since the last call.
func (f *fixture) ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		if e.Type == runtime.EventStepStarted {
			out = append(out, e.Step)
		}
	}
	f.events = nil
	return out
}

func (f *fixture) manifest(steps ...manifest.Step) *manifest.Manifest {
	f.t.Helper()
	m, err := manifest.New(filepath.Join(f.project, "plugins"), manifest.Workflow{Name: "test"}, manifest.Defaults{}, steps...)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func effect(id string, idempotent bool, input any) manifest.Step {
	return manifest.Step{ID: id, Plugin: "effect.wasm", Idempotent: idempotent, Input: input}
}

func TestRuntime_Run_PassesOutputsAndContext(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	res, err := rt.Run(t.Context(), f.manifest(effect("a", true, nil), effect("b", true, nil), effect("c", true, nil)), runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunCompleted || res.Ran != 3 || res.Replayed != 0 {
		t.Fatalf("result = %+v", res)
	}
	var out struct{ Count int }
	if err := json.Unmarshal(res.Output("c"), &out); err != nil || out.Count != 3 {
		t.Fatalf("step c output %s: the context count did not reach 3", res.Output("c"))
	}
}

func TestRuntime_Run_NeedsLimitsOutputs(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	c := effect("c", true, nil)
	c.Needs = &[]string{"a"}
	d := effect("d", true, nil)
	d.Needs = &[]string{}
	res, err := rt.Run(t.Context(), f.manifest(effect("a", true, nil), effect("b", true, nil), c, d, effect("e", true, nil)), runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for step, want := range map[string]string{"a": "[]", "b": `["a"]`, "c": `["a"]`, "d": "[]", "e": `["a","b","c","d"]`} {
		var out struct{ Saw json.RawMessage }
		if err := json.Unmarshal(res.Output(step), &out); err != nil || string(out.Saw) != want {
			t.Errorf("step %s saw outputs %s, want %s", step, out.Saw, want)
		}
	}
}

// interrupt runs m until step stepID has started, then cancels the context,
// leaving that step started and not ended, as a crash would.
func (f *fixture) interrupt(m *manifest.Manifest, stepID string) string {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.t.Context())
	defer cancel()
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: f.project, CacheDir: f.cache,
		OnEvent: func(e runtime.Event) {
			if e.Type == runtime.EventStepStarted && e.Step == stepID {
				cancel()
			}
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := rt.Run(ctx, m, runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrCanceled) {
		f.t.Fatalf("interrupted run: err = %v", err)
	}
	if err := rt.Close(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	return res.RunID
}

func TestRuntime_Resume_AfterInterruption(t *testing.T) {
	slow := map[string]any{"sleep_ms": 300}
	tests := []struct {
		name    string
		steps   []manifest.Step
		opts    runtime.RunOptions
		wantErr error
		wantRan []string
	}{
		{"idempotent step runs again", []manifest.Step{effect("a", true, nil), effect("b", true, slow), effect("c", true, nil)},
			runtime.RunOptions{}, nil, []string{"b", "c"}},
		{"non-idempotent step stops the resume", []manifest.Step{effect("a", false, nil), effect("b", false, slow), effect("c", false, nil)},
			runtime.RunOptions{}, runtime.ErrInterrupted, nil},
		{"non-idempotent step rerun on request", []manifest.Step{effect("a", false, nil), effect("b", false, slow), effect("c", false, nil)},
			runtime.RunOptions{RerunInterrupted: true}, nil, []string{"b", "c"}},
		{"non-idempotent step marked done", []manifest.Step{effect("a", false, nil), effect("b", false, slow), effect("c", false, nil)},
			runtime.RunOptions{MarkDone: true}, nil, []string{"c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			m := f.manifest(tc.steps...)
			runID := f.interrupt(m, "b")
			rt := f.open()
			defer rt.Close(t.Context())
			res, err := rt.Run(t.Context(), m, tc.opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if res != nil && res.RunID != runID {
				t.Fatalf("resumed run %s, want %s", res.RunID, runID)
			}
			if got := f.ran(); strings.Join(got, ",") != strings.Join(tc.wantRan, ",") {
				t.Fatalf("ran %v, want %v (a completed step never runs again)", got, tc.wantRan)
			}
			if tc.wantErr != nil {
				var se *runtime.StepError
				if !errors.As(err, &se) || se.Step != "b" || !strings.Contains(err.Error(), "--rerun-interrupted") {
					t.Fatalf("error does not name the step and the way out: %v", err)
				}
				return
			}
			if res.Status != state.RunCompleted || res.Replayed != 1 {
				t.Fatalf("result = %+v", res)
			}
		})
	}
}

func TestRuntime_Resume_PluginChanged(t *testing.T) {
	f := newFixture(t)
	m := f.manifest(effect("a", true, nil), effect("b", true, map[string]any{"sleep_ms": 300}))
	f.interrupt(m, "b")
	// Replace the plugin under step b with other bytes.
	noop, _ := os.ReadFile(filepath.Join(f.project, "plugins", "noop.wasm"))
	if err := os.WriteFile(filepath.Join(f.project, "plugins", "effect.wasm"), noop, 0o644); err != nil {
		t.Fatal(err)
	}
	rt := f.open()
	defer rt.Close(t.Context())
	_, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrPluginChanged) || !strings.Contains(err.Error(), "--upgrade") {
		t.Fatalf("err = %v, want ErrPluginChanged", err)
	}
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{Upgrade: true})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output("b")) != `{"ok":true}` {
		t.Fatalf("step b ran %s, not the upgraded plugin", res.Output("b"))
	}
}

func TestRuntime_Run_Errors(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())

	t.Run("sha256 pin refuses other bytes before anything runs", func(t *testing.T) {
		s := effect("a", true, nil)
		s.SHA256 = strings.Repeat("0", 64)
		_, err := rt.Run(t.Context(), f.manifest(s), runtime.RunOptions{})
		if !errors.Is(err, runtime.ErrPluginPin) {
			t.Fatalf("err = %v", err)
		}
		if got := f.ran(); len(got) != 0 {
			t.Fatalf("ran %v", got)
		}
	})
	t.Run("trap fails the run and keeps the completed step", func(t *testing.T) {
		m := f.manifest(effect("a", true, nil), manifest.Step{ID: "boom", Plugin: "trap.wasm", OnFailure: manifest.OnFailureFail}, effect("c", true, nil))
		res, err := rt.Run(t.Context(), m, runtime.RunOptions{New: true})
		var se *runtime.StepError
		if !errors.As(err, &se) || se.Step != "boom" || se.Cause != "trap" || !errors.Is(err, host.ErrTrap) {
			t.Fatalf("err = %v", err)
		}
		if res.Status != state.RunFailed || res.Steps[0].Status != state.StepCompleted || res.Steps[2].Status != state.StepPending {
			t.Fatalf("steps = %+v", res.Steps)
		}
		// A failed run resumes only when asked.
		if _, err := rt.Resume(t.Context(), res.RunID, runtime.RunOptions{}); !errors.Is(err, runtime.ErrRunFailed) {
			t.Fatalf("resume of a failed run: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		m := f.manifest(manifest.Step{ID: "spin", Plugin: "loop.wasm", Timeout: manifest.Duration(150 * time.Millisecond)})
		_, err := rt.Run(t.Context(), m, runtime.RunOptions{New: true})
		var se *runtime.StepError
		if !errors.As(err, &se) || se.Cause != "timeout" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("second process on the same store is refused", func(t *testing.T) {
		_, err := runtime.New(t.Context(), runtime.Config{ProjectDir: f.project, NoCache: true})
		if !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "pid") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRuntime_RunAll_Concurrent(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	const runs = 12
	ms := make([]*manifest.Manifest, runs)
	for i := range ms {
		ms[i] = f.manifest(effect("a", true, nil), effect("b", true, nil), effect("c", true, nil), effect("d", true, nil))
	}
	results, errs := rt.RunAll(t.Context(), ms, runtime.RunOptions{}, 4)
	ids := map[string]bool{}
	for i := range ms {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		ids[results[i].RunID] = true
		// Each run's context is its own: its count reaches its own step count.
		var out struct{ Count int }
		if err := json.Unmarshal(results[i].Output("d"), &out); err != nil || out.Count != 4 {
			t.Fatalf("run %d: last output %s", i, results[i].Output("d"))
		}
	}
	if len(ids) != runs {
		t.Fatalf("%d distinct runs, want %d", len(ids), runs)
	}
	if got := len(f.ran()); got != runs*4 {
		t.Fatalf("%d steps started, want %d", got, runs*4)
	}
}

func TestRuntime_CreateCheckpoint(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	cp, err := rt.CreateCheckpoint("before the big refactor", map[string]string{"ticket": "T-1"})
	if err != nil {
		t.Fatal(err)
	}
	cps, err := f.view().Checkpoints("", 0)
	if err != nil || len(cps) != 1 || cps[0].ID != cp.ID || cps[0].Label != "before the big refactor" || cps[0].Metadata["ticket"] != "T-1" {
		t.Fatalf("checkpoints %+v %v", cps, err)
	}
}

// TestCheckpoints_WithoutGit: outside a git repository every completed step
// is still a (state) checkpoint, derived from the journal with no file
// written per step.
func TestCheckpoints_WithoutGit(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	if _, err := rt.Run(t.Context(), f.manifest(effect("a", true, nil), effect("b", true, nil)), runtime.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	cps, err := f.view().Checkpoints("", 0)
	if err != nil || len(cps) != 2 || cps[1].Step != "b" || cps[1].Commit != "" || cps[1].State.StepsCompleted != 2 {
		t.Fatalf("checkpoints %+v %v", cps, err)
	}
	entries, _ := os.ReadDir(filepath.Join(runtime.StoreDir(f.project), "checkpoints"))
	if len(entries) != 0 {
		t.Fatalf("files written per step without git: %v", entries)
	}
}
