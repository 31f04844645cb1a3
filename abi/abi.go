// Package abi defines version 1 of the contract between the 12fa host and
// step plugins: the import namespace, the host-function names and their Wasm
// signatures, the JSON documents that cross the boundary, the status codes
// and the size limits.
//
// It imports only the standard library (and 12fa's one JSON encoder) and
// holds no logic beyond encoding.
// Changing anything here is a protocol change: bump Version, keep the old
// namespace working or refuse it by name, and add a "Why" entry to
// RATIONALE.md.
//
// # Calling convention
//
// Steps use Extism's kernel ("extism:host/env") for input, output and
// memory. 12fa's own host functions live in the import module Namespace.
// Every document argument and result is an Extism memory offset (i64) of a
// UTF-8 block allocated with the kernel's alloc; the host reads its length
// from the kernel. The functions are:
//
//	ctx_get(key i64) -> i64             offset of the JSON value, 0 if unset
//	ctx_set(key i64, value i64) -> i32  Status; value is a JSON document
//	log(level i32, message i64) -> i32  Status; message is plain text
//	input_request(req i64) -> i64       offset of an InputResponse; req is
//	                                    an InputRequest
//	notify(doc i64) -> i32              Status; doc is a Notification
//	                                    (StatusDenied: notifications are
//	                                    off; StatusLimited: rate limit)
//
// A call that breaks the contract (an offset outside memory, a key that is
// empty or too long, a value that is not JSON or too large) fails the step
// with an error naming the function; it never returns a status the guest
// could ignore.
//
// The step function itself is an Extism export (default "run") taking no
// arguments and returning i32: 0 for success, with the output set through
// the kernel's output_set; non-zero for failure, with an error document
// (ErrorDoc as JSON, or plain text) set through error_set.
package abi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Version is the ABI version this package describes.
const Version = 1

// NamespacePrefix is the start of every 12fa import module name; the version
// number follows it.
const NamespacePrefix = "12fa:v"

// Namespace is the Wasm import module that holds the host functions of
// Version.
const Namespace = "12fa:v1"

// Host function names in Namespace.
const (
	FuncCtxGet = "ctx_get"
	FuncCtxSet = "ctx_set"
	FuncLog    = "log"
	// FuncInputRequest asks a person a question (see InputRequest).
	FuncInputRequest = "input_request"
	// FuncNotify sends a Notification through the host's notifier.
	FuncNotify = "notify"
)

// DefaultFunction is the export called when a step names none.
const DefaultFunction = "run"

// ReservedConfigPrefix starts the config keys that belong to 12fa (the JS
// step runner's script, say); a manifest cannot set them.
const ReservedConfigPrefix = "12fa."

// ExportPrepare is an optional export of type () -> i32. The host calls it
// once on every new instance that serves more than one call (all but a
// plugin's first in a process), after the guest runtime's own start-up (a
// WASI reactor's _initialize) and before the instance's first step call;
// when the host resets instances between calls, it snapshots them right
// after it. So whatever a guest builds lazily on first use (Go's
// encoding/json caches, say) can be built here once instead of in every
// call. It must have no effect a step could observe, and it cannot call
// 12fa's host functions (it belongs to no step). A prepare that fails or
// outlives the call's timeout fails the call.
const ExportPrepare = "12fa_prepare"

// NamespaceVersion reports the ABI version a Wasm import module name asks
// for. ok is false when module is not a 12fa namespace at all.
func NamespaceVersion(module string) (version int, ok bool) {
	rest, found := strings.CutPrefix(module, NamespacePrefix)
	if !found {
		return 0, false
	}
	v, err := strconv.Atoi(rest)
	if err != nil || v < 0 {
		return -1, true
	}
	return v, true
}

// Status is what a host function that can fail in an expected way returns.
type Status uint32

// Statuses. StatusOK is zero so that a guest can test for success with a
// single comparison.
const (
	// StatusOK: the call did what was asked.
	StatusOK Status = iota
	// StatusInvalidArgument: the arguments were well-formed but not acceptable.
	StatusInvalidArgument
	// StatusNotFound: the thing asked for does not exist.
	StatusNotFound
	// StatusDenied: the step is not allowed to do this.
	StatusDenied
	// StatusLimited: a per-attempt limit was reached; the call was dropped.
	StatusLimited
	// StatusInternal: the host failed; the guest did nothing wrong.
	StatusInternal
)

var statusNames = [...]string{"ok", "invalid_argument", "not_found", "denied", "limited", "internal"}

// String returns the status's wire name.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "status(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// LogLevel is the level argument of FuncLog.
type LogLevel int32

// Log levels, in increasing severity.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
)

var logLevelNames = [...]string{"trace", "debug", "info", "warn", "error"}

// String returns the level's name.
func (l LogLevel) String() string {
	if l >= 0 && int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// Valid reports whether l is one of the defined levels.
func (l LogLevel) Valid() bool { return l >= LogTrace && l <= LogError }

// Size limits. The host enforces them; guests may rely on them.
const (
	// MaxKeyBytes bounds a context key.
	MaxKeyBytes = 256
	// MaxValueBytes bounds one context value.
	MaxValueBytes = 1 << 20
	// MaxContextBytes bounds a run's context, and one attempt's writes to
	// it, counted as the journal holds them: each key as a JSON string,
	// its value, and two bytes of punctuation.
	MaxContextBytes = 16 << 20
	// MaxLogLineBytes bounds one log message; longer ones are truncated.
	MaxLogLineBytes = 4 << 10
	// MaxLogLines bounds the log lines kept per attempt; later ones are
	// dropped and FuncLog returns StatusLimited.
	MaxLogLines = 1000
	// MaxLogBytes bounds the log bytes kept per attempt.
	MaxLogBytes = 256 << 10
	// MaxStderrBytes bounds the guest stderr (and stdout) kept per attempt.
	MaxStderrBytes = 64 << 10
	// MaxInputBytes bounds the envelope a step receives (its input and the
	// earlier outputs it gets).
	MaxInputBytes = 16 << 20
	// DefaultMaxOutputBytes is the default bound on a step's output.
	DefaultMaxOutputBytes = 4 << 20
	// MaxOutputBytes is the largest bound a manifest may set: a step's
	// output and a full context still fit one journal record. Output
	// limits count the output as recorded (JSON; text becomes a JSON
	// string, binary output base64).
	MaxOutputBytes = 32 << 20
	// MaxErrorBytes bounds the error document a step returns.
	MaxErrorBytes = 64 << 10
	// MaxVarBytes bounds the Extism vars (var_set) of one attempt, keys,
	// values and 40 bytes per var counted, as Extism's default does. Vars
	// start empty in every attempt and end with it.
	MaxVarBytes = 1 << 20
)

// InputRequest is the document a step passes to FuncInputRequest.
//
// A question is known by the run, the step and Key: asking it again (in a
// later attempt) returns the answer once a person gave one. Until then the
// response says it is pending, the step should ask its other questions and
// return, and the run waits; when answered, the step runs again from its
// start. So a step that asks must be safe to re-run up to its questions.
type InputRequest struct {
	Key      string   `json:"key"`
	Question string   `json:"question"`
	Options  []string `json:"options,omitempty"`
	Default  string   `json:"default,omitempty"`
	// Timeout (a duration such as "30m") lets the question expire: with a
	// Default it then answers itself, without one the step fails.
	Timeout string `json:"timeout,omitempty"`
}

// InputResponse is what FuncInputRequest returns.
type InputResponse struct {
	Answered bool   `json:"answered"`
	Answer   string `json:"answer,omitempty"`
	// ID names the question for `12fa respond`.
	ID string `json:"id"`
}

// Notification is what FuncNotify sends (ntfy's fields).
type Notification struct {
	Title    string   `json:"title,omitempty"`
	Message  string   `json:"message"`
	Priority int      `json:"priority,omitempty"` // 1 (min) to 5 (max); 3 default
	Tags     []string `json:"tags,omitempty"`
	Click    string   `json:"click,omitempty"`
	Actions  []Action `json:"actions,omitempty"`
}

// Action is a button on a notification.
type Action struct {
	Action string `json:"action"` // "view" or "http"
	Label  string `json:"label"`
	URL    string `json:"url"`
	// Method (POST when empty) and Clear (dismiss the notification once
	// tapped) are ntfy's, for "http" buttons.
	Method string `json:"method,omitempty"`
	Clear  bool   `json:"clear,omitempty"`
}

// Limits of notifications.
const (
	// MaxNotificationBytes bounds a Notification document.
	MaxNotificationBytes = 8 << 10
	// MaxNotificationsPerAttempt bounds the notifications one attempt may
	// send; later ones return StatusLimited.
	MaxNotificationsPerAttempt = 5
)

// Limits of input requests.
const (
	// MaxQuestionBytes bounds an InputRequest document.
	MaxQuestionBytes = 16 << 10
	// MaxInputRequests bounds the questions one attempt may ask.
	MaxInputRequests = 64
)

// ErrorDoc is the error a step may return through the kernel's error_set,
// encoded as JSON. Plain text is accepted too and read as Message.
type ErrorDoc struct {
	// Code is a short machine-readable class chosen by the plugin.
	Code string `json:"code,omitempty"`
	// Message says what went wrong.
	Message string `json:"message"`
	// Retryable tells whether running the step again could succeed. Nil
	// leaves the decision to the step's policy.
	Retryable *bool `json:"retryable,omitempty"`
}

// ParseErrorDoc reads an error set by a guest: an ErrorDoc as JSON, or plain
// text taken as the message.
func ParseErrorDoc(b []byte) ErrorDoc {
	var d ErrorDoc
	if len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &d) == nil && d.Message != "" {
		return d
	}
	return ErrorDoc{Message: string(b)}
}

// Error formats the document as a one-line error text.
func (d ErrorDoc) Error() string {
	if d.Code == "" {
		return d.Message
	}
	return fmt.Sprintf("%s: %s", d.Code, d.Message)
}
