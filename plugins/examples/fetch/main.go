// Command fetch is an example step that reaches the world under its
// grants: it sends each HTTP request of its input in order (allow.hosts),
// runs each command (allow.commands), and returns what came back. A request that gets no response fails the step
// with the reason's code (http_denied, http_blocked_address …), which the
// runner retries or not as that code says. With "ask" set, it asks a
// question after the requests and waits for the answer, so that the step
// runs again.
//
// Input: {"requests": [{"method": "POST", "url": "…", "headers": {…},
// "body": "…"}], "commands": [{"command": "git", "args": ["status"]}],
// "ask": "question", "vary": false}
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fetch.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"strings"

	pdk "github.com/12fa/12fa/pdk/go"
)

type input struct {
	Requests []pdk.HTTPRequest `json:"requests"`
	Commands []pdk.ExecRequest `json:"commands"`
	Ask      string            `json:"ask"`
	// Vary adds the attempt number to each URL's query: requests that
	// differ from one attempt to the next, as a timestamp in a body would.
	Vary bool `json:"vary"`
}

type result struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    string              `json:"body"`
	URL     string              `json:"url"`
}

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in input
		if err := json.Unmarshal(env.Input, &in); err != nil {
			return nil, pdk.FailPermanent("bad_input", "input: %v", err)
		}
		var out []result
		for _, req := range in.Requests {
			if in.Vary {
				sep := "?"
				if strings.Contains(req.URL, "?") {
					sep = "&"
				}
				req.URL += fmt.Sprintf("%sattempt=%d", sep, env.Attempt)
			}
			resp, err := pdk.HTTP(req)
			if err != nil {
				return nil, err
			}
			pdk.Logf(pdk.Info, "%s %s: %d, %d bytes", req.Method, resp.URL, resp.Status, len(resp.Body))
			out = append(out, result{Status: resp.Status, Headers: resp.Headers, Body: resp.Body, URL: resp.URL})
		}
		var ran []*pdk.ExecResponse
		for _, c := range in.Commands {
			r, err := pdk.Exec(c)
			if err != nil {
				return nil, err
			}
			pdk.Logf(pdk.Info, "%s: exit %d", c.Command, r.ExitCode)
			ran = append(ran, r)
		}
		if in.Ask != "" {
			answer, ok, err := pdk.Ask("confirm", in.Ask)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, pdk.ErrWaiting
			}
			return map[string]any{"responses": out, "commands": ran, "answer": answer}, nil
		}
		return map[string]any{"responses": out, "commands": ran}, nil
	})
}

func main() {}
