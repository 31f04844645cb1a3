//go:build wasip1 || tinygo.wasm

// Package pdk is 12fa's guest kit for Go: it lets a step written in Go (Go's
// wasip1 port or TinyGo) read its envelope, read and write the workflow
// context, log, and return an output or a coded error, over ABI v1.
//
// A step is an exported function that calls Run:
//
//	//go:wasmexport run
//	func run() int32 {
//		return pdk.Run(func(env *pdk.Envelope) (any, error) {
//			pdk.Log(pdk.Info, "hello from "+env.Step)
//			return map[string]string{"greeting": "hi"}, nil
//		})
//	}
//
//	func main() {}
//
// Build it as a reactor: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
//
// A step starts from its instance's post-start-up state every time (a fresh
// instance, or one reset to it): keep nothing in globals between calls, put
// what must last in the context (CtxSet) or the output.
// A step may be run again after a crash if it is idempotent; write it so
// that running it twice has the effect of running it once.
package pdk

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/12fa/12fa/abi"
)

// Envelope is what a step receives; see abi.Envelope.
type Envelope = abi.Envelope

// Log levels.
const (
	Trace = abi.LogTrace
	Debug = abi.LogDebug
	Info  = abi.LogInfo
	Warn  = abi.LogWarn
	Error = abi.LogError
)

// ErrLimited is returned when a per-attempt limit dropped the call.
var ErrLimited = errors.New("12fa: limit reached")

// ErrWaiting is what a step returns (from the function given to Run) when
// it asked questions that have no answer yet. The host notes them, the run
// waits, and once they are answered the step runs again from its start.
var ErrWaiting = errors.New("12fa: waiting for answers")

// Ask asks a person a question, known by key within this step. It returns
// the answer if one was given; otherwise answered is false, and the step
// should ask its other questions and return ErrWaiting. A step that asks
// must be safe to run again up to its questions.
func Ask(key, question string, options ...string) (answer string, answered bool, err error) {
	return AskWith(abi.InputRequest{Key: key, Question: question, Options: options})
}

// Notification is what Notify sends; see abi.Notification.
type Notification = abi.Notification

// ErrNotifyOff is returned by Notify when the run has no notifier.
var ErrNotifyOff = errors.New("12fa: notifications are off")

// Notify sends a notification through the host's notifier (ntfy). It never
// waits for delivery. It returns ErrLimited past the rate limit (5 per
// attempt, 20 per run) and ErrNotifyOff when notifications are off.
func Notify(n Notification) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if st := abi.Status(hostNotify(alloc(b))); st == abi.StatusDenied {
		return ErrNotifyOff
	} else {
		return status(uint32(st))
	}
}

// HTTPRequest and HTTPResponse are the documents of HTTP; see
// abi.HTTPRequest.
type (
	HTTPRequest  = abi.HTTPRequest
	HTTPResponse = abi.HTTPResponse
)

// HTTP sends req under the step's allow.hosts grant and returns the
// response, whatever its status, its body decoded. When there is none
// (refused by the grants, a network failure, a timeout, a response over
// the limits) it returns a *StepError whose Code says why
// (abi.CauseHTTPDenied …): return it from the step, and the runner retries
// or not as that code says.
func HTTP(req HTTPRequest) (*HTTPResponse, error) {
	var resp HTTPResponse
	if err := hostCall(hostHTTP, req, &resp, &resp.Error); err != nil {
		return nil, err
	}
	if resp.BodyBase64 != "" {
		body, err := base64.StdEncoding.DecodeString(resp.BodyBase64)
		if err != nil {
			return nil, fmt.Errorf("12fa: decode HTTP response body: %w", err)
		}
		resp.Body, resp.BodyBase64 = string(body), ""
	}
	return &resp, nil
}

// hostCall sends req's document to a host function that returns a result
// document, decodes it into resp, and returns the error the result holds
// (*errp) as a *StepError with its code.
func hostCall(fn func(uint64) uint64, req, resp any, errp **abi.HostError) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(load(fn(alloc(b))), resp); err != nil {
		return fmt.Errorf("12fa: decode the host's result: %w", err)
	}
	if e := *errp; e != nil {
		return &StepError{Code: string(e.Code), Message: e.Message}
	}
	return nil
}

// ExecRequest and ExecResponse are the documents of Exec; see
// abi.ExecRequest.
type (
	ExecRequest  = abi.ExecRequest
	ExecResponse = abi.ExecResponse
)

// Exec runs one of the step's allow.commands (no shell: Command and its
// Args) and returns what it did; a non-zero exit is a response. When it
// could not run (refused by the grants, killed at its timeout) it returns
// a *StepError whose Code says why (abi.CauseExecDenied …), to return from
// the step. The command runs outside the sandbox, with the user's rights.
func Exec(req ExecRequest) (*ExecResponse, error) {
	var resp ExecResponse
	if err := hostCall(hostExec, req, &resp, &resp.Error); err != nil {
		return nil, err
	}
	return &resp, nil
}

// AskWith is Ask with every field of the request.
func AskWith(req abi.InputRequest) (answer string, answered bool, err error) {
	b, err := json.Marshal(req)
	if err != nil {
		return "", false, err
	}
	var resp abi.InputResponse
	if err := json.Unmarshal(load(hostInputRequest(alloc(b))), &resp); err != nil {
		return "", false, fmt.Errorf("12fa: decode input response: %w", err)
	}
	return resp.Answer, resp.Answered, nil
}

// prepare warms what every step's call goes through (see
// abi.ExportPrepare): the host calls it once on a new instance, after the
// Go runtime's start-up and before it snapshots the instance, so that the
// state Go builds lazily on first use (encoding/json's per-type encoders
// and decoders, fmt's and reflect's caches, the heap's first spans) is
// built once, not on every call. It has no effect a step could observe.
//
//go:wasmexport 12fa_prepare
func prepare() int32 {
	var env Envelope
	_ = json.Unmarshal([]byte(warmEnvelope), &env)
	var v any
	_ = json.Unmarshal(env.Input, &v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(env.Input, &m)
	no := false
	for _, x := range []any{v, m, env, struct{}{}, map[string]string{"k": "v"}, []string{"a"}, 1.5, 1, "s",
		abi.ErrorDoc{Code: "c", Message: "m", Retryable: &no}, abi.InputRequest{Key: "k", Question: "q", Options: []string{"a"}},
		abi.Notification{Title: "t", Message: "m", Priority: 3, Tags: []string{"t"}}} {
		b, _ := json.Marshal(x)
		_ = json.Unmarshal(b, new(any))
	}
	var resp abi.InputResponse
	_ = json.Unmarshal([]byte(`{"answered":true,"answer":"a","id":"q"}`), &resp)
	var n int
	_ = json.Unmarshal([]byte(`1`), &n)
	_ = errors.As(FailPermanent("c", "%s %d %v %q", "a", 1, v, "b"), new(*StepError))
	_ = errors.Is(Fail("c", "m"), ErrWaiting)
	for _, x := range warm {
		_, _ = json.Marshal(x)
		_ = json.Unmarshal([]byte(warmEnvelope), x)
	}
	return 0
}

// warm holds what Warm was given.
var warm []any

// Warm has prepare build the JSON encoders and decoders of the step's own
// types once per instance (see prepare), instead of in every call: call it
// from an init function with a pointer to each type the step decodes or
// encodes, e.g. Warm(&input{}, &output{}).
func Warm(ptrs ...any) { warm = append(warm, ptrs...) }

// warmEnvelope has every field of an envelope and every kind of JSON value.
const warmEnvelope = `{"workflow":"w","run_id":"r","step":"s","attempt":1,` +
	`"input":{"s":"x","n":-1.5e3,"b":true,"z":null,"a":[1,"y",{"k":[]}]},` +
	`"outputs":{"p":{"k":"v"}},"inputs":{"q":"a"}}`

// Input returns the raw input document.
func Input() []byte { return input() }

// GetEnvelope decodes the input as the step envelope.
func GetEnvelope() (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(input(), &env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return &env, nil
}

// Log writes a line to the step's log.
func Log(level abi.LogLevel, msg string) error {
	return status(hostLog(int32(level), alloc([]byte(msg))))
}

// Logf formats and logs a line.
func Logf(level abi.LogLevel, format string, args ...any) error {
	return Log(level, fmt.Sprintf(format, args...))
}

// CtxGet reads the workflow context value under key into v. It reports
// false when the key is unset.
func CtxGet(key string, v any) (bool, error) {
	raw, ok := CtxGetRaw(key)
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// CtxGetRaw returns the JSON value under key.
func CtxGetRaw(key string) (json.RawMessage, bool) {
	off := hostCtxGet(alloc([]byte(key)))
	if off == 0 {
		return nil, false
	}
	return load(off), true
}

// CtxSet writes v, encoded as JSON, under key. The write becomes durable
// with the step's result; a step that fails leaves the context unchanged.
// Setting nil deletes the key.
func CtxSet(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode context value %q: %w", key, err)
	}
	return status(hostCtxSet(alloc([]byte(key)), alloc(b)))
}

// Config returns the manifest's config value under key.
func Config(key string) (string, bool) {
	off := extismConfigGet(alloc([]byte(key)))
	if off == 0 {
		return "", false
	}
	return string(load(off)), true
}

func status(s uint32) error {
	switch abi.Status(s) {
	case abi.StatusOK:
		return nil
	case abi.StatusLimited:
		return ErrLimited
	default:
		return fmt.Errorf("12fa: host returned %s", abi.Status(s))
	}
}

// StepError is an error with a code and a retry hint, returned to the host.
type StepError struct {
	Code      string
	Message   string
	Retryable *bool
}

func (e *StepError) Error() string { return abi.ErrorDoc{Code: e.Code, Message: e.Message}.Error() }

// Fail returns a coded error for the host. Whether it is retried is up to
// the step's policy.
func Fail(code, format string, args ...any) error {
	return &StepError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FailPermanent returns a coded error that must not be retried.
func FailPermanent(code, format string, args ...any) error {
	no := false
	return &StepError{Code: code, Message: fmt.Sprintf(format, args...), Retryable: &no}
}

// Output sets the step's output to v encoded as JSON.
func Output(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	setOutput(b)
	return nil
}

// SetError hands err to the host as the step's error document.
func SetError(err error) {
	doc := abi.ErrorDoc{Message: err.Error()}
	var se *StepError
	if errors.As(err, &se) {
		doc = abi.ErrorDoc{Code: se.Code, Message: se.Message, Retryable: se.Retryable}
	}
	b, _ := json.Marshal(doc)
	setError(b)
}

// Run decodes the envelope, calls fn and hands its result to the host: the
// output encoded as JSON, or the error. Return its value from the exported
// function.
func Run(fn func(env *Envelope) (any, error)) int32 {
	env, err := GetEnvelope()
	if err == nil {
		var out any
		out, err = fn(env)
		if errors.Is(err, ErrWaiting) {
			setOutput([]byte("null")) // the host sees the open questions
			return 0
		}
		if err == nil {
			if err = Output(out); err == nil {
				return 0
			}
		}
	}
	SetError(err)
	return 1
}
