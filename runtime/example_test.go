package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
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
