package host

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/12fa/12fa/abi"
)

// ContextReader gives a call read access to its run's workflow context.
type ContextReader interface {
	// Get returns the JSON value under key, if any.
	Get(key string) (json.RawMessage, bool)
}

// InputProvider answers a step's questions (input_request). The runtime
// gives each call one bound to its run and step.
type InputProvider interface {
	// RequestInput returns the answer to req, or records it as pending.
	RequestInput(ctx context.Context, req abi.InputRequest) (abi.InputResponse, error)
}

// Notifier sends a step's notifications (notify). The runtime gives each
// call one that applies the run's rate limit.
type Notifier interface {
	// Notify sends n; abi.StatusLimited-style refusals come back as
	// ErrLimited.
	Notify(ctx context.Context, n abi.Notification) error
}

// ErrLimited is what a Notifier returns when a rate limit drops a
// notification.
var ErrLimited = errors.New("rate limit reached")

// LogLine is one line a guest logged, or one line of its stderr or stdout.
type LogLine struct {
	Time    time.Time    `json:"time"`
	Level   abi.LogLevel `json:"-"`
	Source  string       `json:"source"` // "log", "stderr" or "stdout"
	Message string       `json:"message"`
}

// Request describes one call.
type Request struct {
	// Function is the export to call; abi.DefaultFunction when empty.
	Function string
	// Input is the input document (the envelope).
	Input []byte
	// Config is readable by the guest through Extism's config_get.
	Config map[string]string
	// Timeout bounds the call's wall-clock time. Required.
	Timeout time.Duration
	// MaxOutputBytes bounds the output; abi.DefaultMaxOutputBytes when 0.
	MaxOutputBytes int
	// Context is the run's workflow context, for ctx_get. May be nil.
	Context ContextReader
	// ContextBytes is what Context holds now, counted as ContextEntryBytes
	// does; ctx_set keeps the run's total within abi.MaxContextBytes.
	ContextBytes int
	// Mounts grants directories to the guest.
	Mounts []Mount
	// OnLog, when set, sees each log line as the guest writes it.
	OnLog func(LogLine)
	// Inputs answers input_request; without it the function is refused.
	Inputs InputProvider
	// Notifier sends notify's notifications; without it notify returns
	// StatusDenied.
	Notifier Notifier
	// HTTP sends the attempt's HTTP requests (12fa's http and Extism's
	// http_request) under the step's grants; without it every request is
	// refused with http_denied.
	HTTP HTTPDoer
	// Exec runs the attempt's commands; without it exec is refused with
	// exec_denied.
	Exec Execer
}

// Execer runs one attempt's commands (12fa's exec) under the step's
// grants. Exec never fails in Go: a refusal is in the response.
type Execer interface {
	Exec(ctx context.Context, req abi.ExecRequest) abi.ExecResponse
}

// HTTPDoer sends one attempt's HTTP requests. Do never fails in Go: a
// request that gets no response comes back with Error set.
type HTTPDoer interface {
	Do(ctx context.Context, req abi.HTTPRequest) abi.HTTPResponse
}

// Result is what a call produced. On failure it still holds the logs and
// captured stderr, so that a plugin author can see what happened.
type Result struct {
	Output []byte
	// ContextWrites holds the ctx_set calls of the attempt, last write wins;
	// a JSON null deletes the key.
	ContextWrites map[string]json.RawMessage
	Logs          []LogLine
	// LogsDropped counts log lines over the per-attempt limits.
	LogsDropped int
	Duration    time.Duration
	// Pending lists the ids of the questions the call asked that have no
	// answer yet: the step must wait for them.
	Pending []string
}
