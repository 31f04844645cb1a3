package abi

import "strings"

// FuncExec runs one of the step's allow.commands, outside the sandbox:
//
//	exec(req i64) -> i64   offset of an ExecResponse; req is an ExecRequest
//
// A non-zero exit is a response, not an error; a command the grants refuse,
// one that cannot start or one killed at its deadline comes back with Error
// set. It never traps but for a req that is no ExecRequest document.
const FuncExec = "exec"

// ExecRequest is the document a step passes to FuncExec. There is no
// shell: Command names an allow.commands entry and Args is its argv.
type ExecRequest struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// Cwd is a guest path inside one of the step's write_paths grants; by
	// default the first of them.
	Cwd string `json:"cwd,omitempty"`
	// Env sets variables the step's allow.env names (the others keep the
	// host's values); any other name is refused.
	Env   map[string]string `json:"env,omitempty"`
	Stdin string            `json:"stdin,omitempty"`
	// Timeout (such as "2m") bounds the command within the attempt's
	// deadline.
	Timeout string `json:"timeout,omitempty"`
}

// ExecResponse is what FuncExec returns. Output that is not UTF-8 has its
// bad bytes replaced.
type ExecResponse struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	// Truncated: stdout or stderr was over MaxExecOutputBytes and was cut.
	Truncated  bool       `json:"truncated,omitempty"`
	DurationMS float64    `json:"duration_ms"`
	Error      *HostError `json:"error,omitempty"`
}

// Wire returns r ready to encode for a guest.
func (r ExecResponse) Wire() ExecResponse {
	r.Stdout = strings.ToValidUTF8(r.Stdout, "\uFFFD")
	r.Stderr = strings.ToValidUTF8(r.Stderr, "\uFFFD")
	return r
}

// Limits of commands.
const (
	// MaxExecOutputBytes bounds stdout and stderr, each, as a step gets
	// them.
	MaxExecOutputBytes = 1 << 20
	// MaxExecRequestBytes bounds an ExecRequest document.
	MaxExecRequestBytes = 4 << 20
)
