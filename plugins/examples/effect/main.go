// Command effect is a test fixture: it logs "effect <step>" (the side effect
// that tests count) and returns its step id and attempt. With input
// {"sleep_ms": N} it sleeps first; with {"fail": true} it fails.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o effect.wasm .
package main

import (
	"encoding/json"
	"time"

	pdk "github.com/12fa/12fa/pdk/go"
)

type input struct {
	SleepMS int  `json:"sleep_ms"`
	Fail    bool `json:"fail"`
}

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in input
		_ = json.Unmarshal(env.Input, &in)
		if in.SleepMS > 0 {
			time.Sleep(time.Duration(in.SleepMS) * time.Millisecond)
		}
		if in.Fail {
			return nil, pdk.Fail("asked_to_fail", "step %s was asked to fail", env.Step)
		}
		pdk.Log(pdk.Info, "effect "+env.Step)
		var count int
		pdk.CtxGet("count", &count)
		if err := pdk.CtxSet("count", count+1); err != nil {
			return nil, err
		}
		return map[string]any{"step": env.Step, "attempt": env.Attempt, "count": count + 1}, nil
	})
}

func main() {}
