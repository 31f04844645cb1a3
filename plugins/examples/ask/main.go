// Command ask is an example step that needs a person: it asks two
// questions at once, waits, and uses the answers when the step runs again.
// Config "question" replaces the first question's text (tests use it to
// ask with text crafted to fool a person).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ask.wasm .
package main

import (
	"github.com/12fa/12fa/abi"
	pdk "github.com/12fa/12fa/pdk/go"
)

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		question, _ := pdk.Config("question")
		if question == "" {
			question = "Deploy to production?"
		}
		pdk.Logf(pdk.Info, "attempt %d: asking", env.Attempt)
		if question != "Deploy to production?" {
			pdk.Logf(pdk.Info, "asking %s", question)
		}
		timeout, _ := pdk.Config("timeout") // lets tests make the questions expire
		deploy, ok1, err := pdk.AskWith(abi.InputRequest{Key: "deploy", Question: question,
			Options: []string{"yes", "no"}, Timeout: timeout})
		if err != nil {
			return nil, err
		}
		name, ok2, err := pdk.Ask("release-name", "What should the release be called?")
		if err != nil {
			return nil, err
		}
		if !ok1 || !ok2 {
			return nil, pdk.ErrWaiting
		}
		pdk.Logf(pdk.Info, "deploy=%s name=%s", deploy, name)
		return map[string]any{"deploy": deploy == "yes", "release": name}, nil
	})
}

func main() {}
