// Command go-greet is the greet example step in Go (see
// plugins/examples/GREET.md for what every language's greet does).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o go-greet.wasm .
package main

import (
	"encoding/json"
	"fmt"

	pdk "github.com/12fa/12fa/pdk/go"
)

type input struct {
	Name string `json:"name"`
	Fail string `json:"fail"`
	URL  string `json:"url"`
	Run  string `json:"run"`
}

// The decoder of input is built once per instance, not in every call.
func init() { pdk.Warm(&input{}) }

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in input
		_ = json.Unmarshal(env.Input, &in)
		switch in.Fail {
		case "permanent":
			return nil, pdk.FailPermanent("bad_name", "greet was asked to fail for good")
		case "retry":
			return nil, pdk.Fail("flaky", "greet was asked to fail once more")
		}
		if in.Name == "" {
			return nil, pdk.FailPermanent("no_name", "input.name is missing")
		}
		tone, ok, err := pdk.Ask("tone", fmt.Sprintf("How should I greet %s?", in.Name), "formal", "casual")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, pdk.ErrWaiting
		}
		pdk.Logf(pdk.Info, "greeting %s (%s)", in.Name, tone)
		var count int
		pdk.CtxGet("greetings", &count)
		count++
		if err := pdk.CtxSet("greetings", count); err != nil {
			return nil, err
		}
		_ = pdk.Notify(pdk.Notification{Title: "greet", Message: "greeted " + in.Name, Priority: 3})
		greeting := "Hi, " + in.Name + "!"
		if tone == "formal" {
			greeting = "Good day, " + in.Name + "."
		}
		out := map[string]any{"greeting": greeting, "count": count, "step": env.Step, "attempt": env.Attempt, "lang": "go"}
		if in.URL != "" {
			resp, err := pdk.HTTP(pdk.HTTPRequest{URL: in.URL})
			if err != nil {
				return nil, err
			}
			out["fetched"] = resp.Body
		}
		if in.Run != "" {
			r, err := pdk.Exec(pdk.ExecRequest{Command: in.Run, Args: []string{"hello", in.Name}})
			if err != nil {
				return nil, err
			}
			out["ran"] = r.Stdout
		}
		return out, nil
	})
}

func main() {}
