package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/internal/testutil"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// fillStep is a step of the fill fixture (plugins/examples/wat/fill.wat):
// it sets context values of 1 MiB of '<' until refused, under keys that
// start with prefix, and outputs '<' (export big: 32 MiB, run: 4 MiB) or
// the number of keys it set (ctx).
func (f *fixture) fillStep(id, export, prefix string) manifest.Step {
	dst := filepath.Join(f.project, "plugins", "fill.wasm")
	if _, err := os.Stat(dst); err != nil {
		if err := os.WriteFile(dst, testutil.MustReadExample(f.t, "wat/fill.wasm"), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	return manifest.Step{ID: id, Plugin: "fill.wasm", Function: export, Idempotent: true,
		Config: map[string]string{"p": prefix}, Memory: 128 << 20, MaxOutput: abi.MaxOutputBytes}
}

func contextBytes(r state.Run) int {
	n := 0
	for k, v := range r.Context {
		n += host.ContextEntryBytes(k, v)
	}
	return n
}

func mustRun(t *testing.T, f *fixture, id string) state.Run {
	t.Helper()
	r, err := f.view().Run(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The per-run context limit holds over the run, not per attempt: a second
// and third step that try to add as much again are refused.
func TestRuntime_ContextLimit_IsPerRun(t *testing.T) {
	f := newFixture(t)
	m := f.manifest(f.fillStep("a", "ctx", "a"), f.fillStep("b", "ctx", "b"), f.fillStep("c", "ctx", "c"))
	rt := f.open()
	defer rt.Close(t.Context())
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var set [3]string
	for i, id := range []string{"a", "b", "c"} {
		set[i] = strings.Trim(string(res.Output(id)), `"`)
	}
	run := mustRun(t, f, res.RunID)
	if n := contextBytes(run); n > abi.MaxContextBytes {
		t.Fatalf("the run's context holds %d bytes, over the %d limit (keys set per step: %v)", n, abi.MaxContextBytes, set)
	}
	if set[0] != "15" || set[1] != "00" || set[2] != "00" {
		t.Fatalf("keys set per step %v, want [15 00 00]", set)
	}
}

// max_output counts the output as recorded: text that grows when encoded
// as JSON is measured after it grows.
func TestRuntime_OutputLimit_CountsRecordedBytes(t *testing.T) {
	f := newFixture(t)
	s := f.fillStep("a", "run", "a")
	s.MaxOutput = 4 << 20
	rt := f.open()
	defer rt.Close(t.Context())
	// run outputs a 4 MiB JSON string: within the limit as recorded.
	if _, err := rt.Run(t.Context(), f.manifest(s), runtime.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	s.ID, s.MaxOutput = "b", 4<<20-1
	_, err := rt.Run(t.Context(), f.manifest(s), runtime.RunOptions{New: true})
	var se *runtime.StepError
	if !errors.As(err, &se) || se.Cause != "output_too_large" {
		t.Fatalf("a 4 MiB output under a limit one byte smaller: %v", err)
	}
}

// Each line a step writes to stderr is one log event, so it shows once on
// the console and once in the progress log.
func TestRuntime_StderrLinesOnce(t *testing.T) {
	f := newFixture(t)
	dst := filepath.Join(f.project, "plugins", "gopanic.wasm")
	if err := os.WriteFile(dst, testutil.MustReadExample(t, "gopanic/gopanic.wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := f.open()
	defer rt.Close(t.Context())
	s := manifest.Step{ID: "p", Plugin: "gopanic.wasm", Retry: fast(1)}
	if _, err := rt.Run(t.Context(), f.manifest(s), runtime.RunOptions{}); err == nil {
		t.Fatal("a panicking step completed")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.events {
		if e.Type == runtime.EventStepLog && e.Log.Source == "stderr" && strings.HasPrefix(e.Log.Message, "panic: ") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the panic line came as %d log events, want 1", n)
	}
}

// A question asked by an attempt that a later one superseded (the plugin
// changed and the run was upgraded) is marked superseded: 12fa inputs
// hides it, an answer is refused, and nothing waits for it.
func TestRuntime_Questions_Superseded(t *testing.T) {
	f := newFixture(t)
	m := f.manifest(manifest.Step{ID: "ask", Plugin: "ask.wasm"})
	rt := f.open()
	if _, err := rt.Run(t.Context(), m, runtime.RunOptions{}); !errors.Is(err, runtime.ErrWaiting) {
		t.Fatalf("first run: %v, want waiting", err)
	}
	qs, err := f.view().Questions()
	if err != nil || len(qs) != 2 {
		t.Fatalf("questions %v, %v", qs, err)
	}
	if err := rt.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The step's plugin is replaced by one that asks nothing.
	noop, _ := os.ReadFile(filepath.Join(f.project, "plugins", "noop.wasm"))
	if err := os.WriteFile(filepath.Join(f.project, "plugins", "ask.wasm"), noop, 0o644); err != nil {
		t.Fatal(err)
	}
	rt = f.open()
	defer rt.Close(t.Context())
	if _, err := rt.Run(t.Context(), m, runtime.RunOptions{Upgrade: true}); err != nil {
		t.Fatal(err)
	}
	qs, _ = f.view().Questions()
	for _, q := range qs {
		if q.Status != inputs.Superseded || q.SupersededAt.IsZero() {
			t.Errorf("question %s (%s) is %s after the step completed without it", q.ID, q.Key, q.Status)
		}
	}
	if _, err := inputs.New(runtime.StoreDir(f.project), nil).Respond(qs[0].ID, "yes"); !errors.Is(err, inputs.ErrSuperseded) {
		t.Fatalf("answering a superseded question: %v", err)
	}
}
