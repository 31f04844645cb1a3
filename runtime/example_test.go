package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// A Go program runs a workflow built in code: two steps of the example
// "effect" plugin, the second seeing the first's context write.
func Example() {
	ctx := context.Background()
	project, err := os.MkdirTemp("", "12fa-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(project)

	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: project, NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)

	m, err := manifest.New("../plugins/examples", manifest.Workflow{Name: "embedded"}, manifest.Defaults{},
		manifest.Step{ID: "first", Plugin: "effect/effect.wasm", Idempotent: true},
		manifest.Step{ID: "second", Plugin: "effect/effect.wasm", Idempotent: true},
	)
	if err != nil {
		log.Fatal(err)
	}
	res, err := rt.Run(ctx, m, runtime.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	var second struct {
		Count int      `json:"count"`
		Saw   []string `json:"saw"`
	}
	if err := json.Unmarshal(res.Output("second"), &second); err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, res.Ran)
	fmt.Println(second.Count, second.Saw)
	// Output:
	// completed 2
	// 2 [first]
}

// newExample opens a runtime on a new project directory; done closes it
// and removes the directory.
func newExample(ctx context.Context) (rt *runtime.Runtime, project string, done func()) {
	project, err := os.MkdirTemp("", "12fa-example-*")
	if err != nil {
		log.Fatal(err)
	}
	rt, err = runtime.New(ctx, runtime.Config{ProjectDir: project, NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	return rt, project, func() {
		rt.Close(ctx)
		os.RemoveAll(project)
	}
}

// twoSteps is a workflow of two steps of the example "effect" plugin,
// whose rollback export is "undo".
func twoSteps() *manifest.Manifest {
	m, err := manifest.New("../plugins/examples", manifest.Workflow{Name: "two"}, manifest.Defaults{},
		manifest.Step{ID: "first", Plugin: "effect/effect.wasm", Idempotent: true, Rollback: "undo"},
		manifest.Step{ID: "second", Plugin: "effect/effect.wasm", Idempotent: true, Rollback: "undo"},
	)
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// Runs lists the store's runs, the most recently active first, and
// RunState reads one with its steps.
func ExampleRuntime_Runs() {
	ctx := context.Background()
	rt, _, done := newExample(ctx)
	defer done()
	for range 2 {
		if _, err := rt.Run(ctx, twoSteps(), runtime.RunOptions{New: true}); err != nil {
			log.Fatal(err)
		}
	}
	runs, err := rt.Runs(state.ListOptions{Workflow: "two", Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	run, err := rt.RunState(runs[0].ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(runs), runs[0].Status, runs[0].Done, "of", runs[0].Steps)
	fmt.Println(run.Steps[1].ID, run.Steps[1].Status, string(run.Context["count"]))
	// Output:
	// 2 completed 2 of 2
	// second completed 2
}

// Rollback undoes a run (saga): the steps' rollback exports, the last
// step's first. It reads the manifest the run was started from.
func ExampleRuntime_Rollback() {
	ctx := context.Background()
	rt, project, done := newExample(ctx)
	defer done()
	plugin, err := filepath.Abs("../plugins/examples/effect/effect.wasm")
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(project, "plugin-manifest.toml")
	toml := fmt.Sprintf(`[workflow]
name = "deploy"
[[step]]
id = "build"
plugin = %q
idempotent = true
rollback = "undo"
[[step]]
id = "release"
plugin = %q
idempotent = true
rollback = "undo"
`, plugin, plugin)
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		log.Fatal(err)
	}
	m, err := manifest.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	res, err := rt.Run(ctx, m, runtime.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	undone, err := rt.Rollback(ctx, res.RunID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, "then", undone.Status)
	for _, s := range undone.Steps {
		fmt.Println(s.ID, s.Rollback)
	}
	// Output:
	// completed then rolled_back
	// build completed
	// release completed
}

// WaitForResponse waits for a person's answer to a question a step asked,
// given by `12fa respond` (here Respond, as it does) from any process.
func ExampleRuntime_WaitForResponse() {
	ctx := context.Background()
	rt, project, done := newExample(ctx)
	defer done()
	m, err := manifest.New("../plugins/examples", manifest.Workflow{Name: "release"}, manifest.Defaults{},
		manifest.Step{ID: "ask", Plugin: "ask/ask.wasm", Idempotent: true})
	if err != nil {
		log.Fatal(err)
	}
	res, _ := rt.Run(ctx, m, runtime.RunOptions{})
	v, err := runtime.OpenView(project, nil)
	if err != nil {
		log.Fatal(err)
	}
	qs, err := v.Questions()
	v.Close()
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if _, err := runtime.Respond(project, qs[0].ID, "yes"); err != nil {
			log.Fatal(err)
		}
	}()
	q, err := rt.WaitForResponse(ctx, qs[0].ID, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, len(qs))
	fmt.Println(q.Question, q.Answer)
	// Output:
	// waiting 2
	// Deploy to production? yes
}

// CreateCheckpoint records a labelled checkpoint outside any run;
// OpenView lists it with the others.
func ExampleRuntime_CreateCheckpoint() {
	ctx := context.Background()
	rt, project, done := newExample(ctx)
	defer done()
	if _, err := rt.CreateCheckpoint("before the refactor", map[string]string{"ticket": "T-1"}); err != nil {
		log.Fatal(err)
	}
	v, err := runtime.OpenView(project, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	cps, err := v.Checkpoints("", 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(cps), cps[0].Label, cps[0].Metadata["ticket"])
	// Output:
	// 1 before the refactor T-1
}

// Prune removes finished runs older than a cut, keeping the most recent.
func ExampleRuntime_Prune() {
	ctx := context.Background()
	rt, _, done := newExample(ctx)
	defer done()
	for range 3 {
		if _, err := rt.Run(ctx, twoSteps(), runtime.RunOptions{New: true}); err != nil {
			log.Fatal(err)
		}
	}
	gone, err := rt.Prune(ctx, runtime.PruneOptions{OlderThan: time.Now().Add(time.Hour), Keep: 1})
	if err != nil {
		log.Fatal(err)
	}
	left, err := rt.Runs(state.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(gone), "pruned,", len(left), "left")
	// Output:
	// 2 pruned, 1 left
}
