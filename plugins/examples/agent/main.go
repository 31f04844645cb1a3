// Command agent is the agent workflow's plugin: three exports, one per
// step of plugin-manifest.toml.
//
//   - plan asks a model (an OpenAI-compatible chat completions endpoint,
//     its key a secret the host puts in; the step never holds it) for a
//     small change to the project in /work, then asks a person to approve
//     it. The model's answer is journaled: when the step runs again after
//     the answer, it gets the recorded answer back, and the model is asked
//     once.
//   - apply writes the planned file into /work (a write grant).
//   - test runs `go test ./...` in /work (a granted command) and fails the
//     run if the tests fail.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o agent.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"

	pdk "github.com/12fa/12fa/pdk/go"
)

// Plan is what the model proposes: one file's new content.
type Plan struct {
	Summary string `json:"summary"`
	Path    string `json:"path"`
	Content string `json:"content"`
}

type planInput struct {
	Goal  string   `json:"goal"`
	Files []string `json:"files"`
}

//go:wasmexport plan
func plan() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in planInput
		if err := json.Unmarshal(env.Input, &in); err != nil || in.Goal == "" {
			return nil, pdk.FailPermanent("bad_input", "input needs a goal")
		}
		base, _ := pdk.Config("base_url")
		model, _ := pdk.Config("model")
		var files strings.Builder
		for _, f := range in.Files {
			b, err := os.ReadFile(path.Join("/work", f))
			if err != nil {
				return nil, pdk.FailPermanent("bad_input", "read %s: %v", f, err)
			}
			fmt.Fprintf(&files, "--- %s\n%s\n", f, b)
		}
		body, _ := json.Marshal(map[string]any{
			"model": model,
			"messages": []map[string]string{
				{"role": "system", "content": `You change one file of a Go project. Answer with JSON only: {"summary": "...", "path": "file.go", "content": "the whole new file"}.`},
				{"role": "user", "content": "Goal: " + in.Goal + "\n\n" + files.String()},
			},
			"response_format": map[string]string{"type": "json_object"},
		})
		resp, err := pdk.HTTP(pdk.HTTPRequest{Method: "POST", URL: strings.TrimSuffix(base, "/") + "/v1/chat/completions",
			Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: string(body)})
		if err != nil {
			return nil, err
		}
		if resp.Status != 200 {
			return nil, pdk.Fail("model_error", "the model answered %d: %.200s", resp.Status, resp.Body)
		}
		var completion struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &completion); err != nil || len(completion.Choices) == 0 {
			return nil, pdk.Fail("model_error", "not a chat completion: %.200s", resp.Body)
		}
		var p Plan
		if err := json.Unmarshal([]byte(completion.Choices[0].Message.Content), &p); err != nil || p.Path == "" {
			return nil, pdk.Fail("model_error", "the model's answer is not a plan: %.200s", completion.Choices[0].Message.Content)
		}
		if path.IsAbs(p.Path) || strings.Contains(p.Path, "..") {
			return nil, pdk.FailPermanent("bad_plan", "the plan writes %q, outside the project", p.Path)
		}
		pdk.Logf(pdk.Info, "plan: %s (%s, %d bytes)", p.Summary, p.Path, len(p.Content))
		answer, ok, err := pdk.Ask("approve", "Apply this change? "+p.Summary+" ("+p.Path+")", "approve", "reject")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, pdk.ErrWaiting
		}
		if answer != "approve" {
			return nil, pdk.FailPermanent("rejected", "the plan was rejected")
		}
		return p, nil
	})
}

//go:wasmexport apply
func apply() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var p Plan
		if err := json.Unmarshal(env.Outputs["plan"], &p); err != nil {
			return nil, pdk.FailPermanent("no_plan", "the plan step's output: %v", err)
		}
		if err := os.WriteFile(path.Join("/work", p.Path), []byte(p.Content), 0o644); err != nil {
			return nil, pdk.Fail("write", "write %s: %v", p.Path, err)
		}
		pdk.Logf(pdk.Info, "wrote %s (%d bytes)", p.Path, len(p.Content))
		return map[string]any{"written": p.Path, "bytes": len(p.Content)}, nil
	})
}

//go:wasmexport test
func test() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		r, err := pdk.Exec(pdk.ExecRequest{Command: "go", Args: []string{"test", "./..."}, Cwd: "/work",
			Env: map[string]string{"GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}, Timeout: "5m"})
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(strings.TrimSpace(r.Stdout+r.Stderr), "\n") {
			pdk.Logf(pdk.Info, "go test: %s", line)
		}
		if r.ExitCode != 0 {
			return nil, pdk.FailPermanent("tests_failed", "go test exited %d", r.ExitCode)
		}
		return map[string]any{"passed": true, "duration_ms": r.DurationMS}, nil
	})
}

func main() {}
