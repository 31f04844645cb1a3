// Command plan is the second step of the example workflow: it reads the
// requirements from the context and plans one task for each.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plan.wasm .
package main

import (
	"fmt"

	pdk "github.com/12fa/12fa/pdk/go"
)

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var reqs []string
		ok, err := pdk.CtxGet("requirements", &reqs)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, pdk.FailPermanent("missing_context", "no requirements in the context: run analyze first")
		}
		estimate := 1
		if s, ok := pdk.Config("hours_per_task"); ok {
			fmt.Sscan(s, &estimate)
		}
		tasks := make([]map[string]any, 0, len(reqs))
		for i, r := range reqs {
			tasks = append(tasks, map[string]any{"id": i + 1, "task": "implement " + r, "hours": estimate})
		}
		pdk.Logf(pdk.Info, "planned %d tasks", len(tasks))
		if err := pdk.CtxSet("plan_hours", estimate*len(tasks)); err != nil {
			return nil, err
		}
		return map[string]any{"tasks": tasks}, nil
	})
}

func main() {}
