// Command report is the last step of the example workflow: it reads the
// outputs of the earlier steps from its envelope and sums them up.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o report.wasm .
package main

import (
	"encoding/json"
	"fmt"

	pdk "github.com/12fa/12fa/pdk/go"
)

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var analyzed struct {
			Goal string `json:"goal"`
		}
		var planned struct {
			Tasks []json.RawMessage `json:"tasks"`
		}
		if err := json.Unmarshal(env.Outputs["analyze"], &analyzed); err != nil {
			return nil, pdk.FailPermanent("missing_output", "no output from analyze: %v", err)
		}
		if err := json.Unmarshal(env.Outputs["plan"], &planned); err != nil {
			return nil, pdk.FailPermanent("missing_output", "no output from plan: %v", err)
		}
		var hours int
		if _, err := pdk.CtxGet("plan_hours", &hours); err != nil {
			return nil, err
		}
		summary := fmt.Sprintf("%q: %d tasks, about %d hours (run %s)", analyzed.Goal, len(planned.Tasks), hours, env.RunID)
		pdk.Log(pdk.Info, summary)
		return map[string]any{"summary": summary, "tasks": len(planned.Tasks), "hours": hours}, nil
	})
}

func main() {}
