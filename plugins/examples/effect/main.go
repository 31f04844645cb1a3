// Command effect is a test fixture: it logs "effect <step>" (the side effect
// that tests count), counts completed steps in the context, and returns its
// step id, attempt, the count and the ids of the outputs it received. With input
// {"sleep_ms": N} it sleeps first; with {"fail": true} it fails, with
// {"fail_until_attempt": N} it fails attempts before N ({"code": …,
// "permanent": true} shape the error); {"stain": true} checks that no
// earlier call left marks in its instance (and leaves them, before any
// sleep).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o effect.wasm .
package main

import (
	"encoding/json"
	"sort"
	"time"

	pdk "github.com/12fa/12fa/pdk/go"
)

type input struct {
	SleepMS int  `json:"sleep_ms"`
	Fail    bool `json:"fail"`
	// FailUntilAttempt fails every attempt before this one.
	FailUntilAttempt int `json:"fail_until_attempt"`
	// Code and Permanent shape the error when failing.
	Code      string `json:"code"`
	Permanent bool   `json:"permanent"`
	// UndoFail makes the undo export fail; UndoFailUntilAttempt fails
	// its attempts before this one.
	UndoFail             bool `json:"undo_fail"`
	UndoFailUntilAttempt int  `json:"undo_fail_until_attempt"`
	// Notify, when set, is sent as a notification.
	Notify string `json:"notify"`
	// Stain reports whether an earlier call left its marks in this
	// instance (a package variable and a heap object), then leaves them.
	Stain bool `json:"stain"`
}

// Marks a call leaves behind when asked to stain; a call in a clean
// instance finds them at their zero values.
var (
	stainCount int
	stainHeap  *[]byte
)

// undo is the step's rollback: it logs "undo <step>" (the effect tests
// count) and returns what it saw.
//
//go:wasmexport undo
func undo() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in input
		_ = json.Unmarshal(env.Input, &in)
		if in.UndoFail || env.Attempt < in.UndoFailUntilAttempt {
			return nil, pdk.Fail("undo_failed", "undo of %s was asked to fail (attempt %d)", env.Step, env.Attempt)
		}
		pdk.Log(pdk.Info, "undo "+env.Step)
		_, done := env.Outputs[env.Step]
		return map[string]any{"undone": env.Step, "had_output": done}, nil
	})
}

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in input
		_ = json.Unmarshal(env.Input, &in)
		var stained bool
		if in.Stain {
			// The marks are left before the sleep, so that a call cut
			// short leaves them too.
			stained = stainCount != 0 || stainHeap != nil
			stainCount++
			b := make([]byte, 1<<10)
			stainHeap = &b
		}
		if in.SleepMS > 0 {
			time.Sleep(time.Duration(in.SleepMS) * time.Millisecond)
		}
		if in.Fail || env.Attempt < in.FailUntilAttempt {
			code := in.Code
			if code == "" {
				code = "asked_to_fail"
			}
			if in.Permanent {
				return nil, pdk.FailPermanent(code, "step %s was asked to fail (attempt %d)", env.Step, env.Attempt)
			}
			return nil, pdk.Fail(code, "step %s was asked to fail (attempt %d)", env.Step, env.Attempt)
		}
		if in.Stain {
			return map[string]any{"stained": stained}, nil
		}
		pdk.Log(pdk.Info, "effect "+env.Step)
		if in.Notify != "" {
			if err := pdk.Notify(pdk.Notification{Title: env.Step, Message: in.Notify}); err != nil {
				pdk.Log(pdk.Warn, "notify: "+err.Error())
			}
		}
		var count int
		pdk.CtxGet("count", &count)
		if err := pdk.CtxSet("count", count+1); err != nil {
			return nil, err
		}
		saw := make([]string, 0, len(env.Outputs))
		for id := range env.Outputs {
			saw = append(saw, id)
		}
		sort.Strings(saw)
		out := map[string]any{"step": env.Step, "attempt": env.Attempt, "count": count + 1, "saw": saw}
		if len(env.Inputs) > 0 {
			out["inputs"] = env.Inputs
		}
		return out, nil
	})
}

func main() {}
