// Command analyze is the first step of the example workflow: it turns a goal
// into a list of requirements and keeps them in the workflow context.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o analyze.wasm .
package main

import (
	"encoding/json"
	"strings"

	pdk "github.com/12fa/12fa/pdk/go"
)

type input struct {
	Goal string `json:"goal"`
}

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in input
		if err := json.Unmarshal(env.Input, &in); err != nil || in.Goal == "" {
			return nil, pdk.FailPermanent("bad_input", "input must be {\"goal\": \"…\"}")
		}
		var reqs []string
		for _, part := range strings.FieldsFunc(in.Goal, func(r rune) bool { return r == ',' || r == ';' }) {
			if p := strings.TrimSpace(part); p != "" {
				reqs = append(reqs, p)
			}
		}
		pdk.Logf(pdk.Info, "found %d requirements in %q", len(reqs), in.Goal)
		if err := pdk.CtxSet("requirements", reqs); err != nil {
			return nil, err
		}
		return map[string]any{"goal": in.Goal, "requirements": reqs}, nil
	})
}

func main() {}
