package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/12fa/12fa/abi"
)

// Causes of a failed call. A *CallError wraps exactly one of them; test with
// errors.Is.
var (
	// ErrTimeout: the call ran past its deadline and was stopped.
	ErrTimeout = errors.New("timeout")
	// ErrMemoryLimit: the guest trapped with a linear memory at its cap.
	ErrMemoryLimit = errors.New("memory limit reached")
	// ErrTrap: the guest trapped (unreachable, out-of-bounds access, stack
	// overflow, a Go panic in the guest …).
	ErrTrap = errors.New("trap")
	// ErrOutputTooLarge: the guest set an output larger than allowed.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrBadHostCall: the guest called a host function against the ABI.
	ErrBadHostCall = errors.New("bad host function call")
	// ErrPluginFailed: the guest returned a failure of its own.
	ErrPluginFailed = errors.New("plugin returned an error")
	// ErrNoFunction: the plugin does not export the function to call.
	ErrNoFunction = errors.New("function not exported")
	// ErrCanceled: the caller canceled the call (not a failure of the step).
	ErrCanceled = errors.New("canceled")
	// ErrInstantiate: the plugin could not be instantiated.
	ErrInstantiate = errors.New("instantiate failed")
)

// ErrABIVersion is returned by Load for a plugin that imports a 12fa
// namespace of another ABI version.
var ErrABIVersion = errors.New("unsupported abi version")

// ErrUnsupportedImport is returned by Load for a plugin that imports
// functions (or memories, tables, globals) 12fa does not provide; the error
// names each one.
var ErrUnsupportedImport = errors.New("plugin imports what 12fa does not provide")

// ErrInvalidPlugin is returned by Load for bytes that are not a usable Wasm
// module.
var ErrInvalidPlugin = errors.New("invalid plugin")

var causeNames = map[error]string{
	ErrTimeout:        "timeout",
	ErrMemoryLimit:    "memory_limit",
	ErrTrap:           "trap",
	ErrOutputTooLarge: "output_too_large",
	ErrBadHostCall:    "bad_host_call",
	ErrPluginFailed:   "plugin_error",
	ErrNoFunction:     "no_function",
	ErrCanceled:       "canceled",
	ErrInstantiate:    "instantiate",
	ErrGrant:          "bad_grant",
	ErrInputExpired:   "input_timeout",
}

// CallError is the error of a failed call. Cause is one of the Err* values of
// this package; Detail says what happened in words fit for a user (never a
// host stack trace); Guest holds the error document when the guest returned
// one.
type CallError struct {
	Cause  error
	Detail string
	Guest  *abi.ErrorDoc
}

func (e *CallError) Error() string {
	if e.Detail == "" {
		return e.Cause.Error()
	}
	return e.Cause.Error() + ": " + e.Detail
}

// Unwrap returns the cause.
func (e *CallError) Unwrap() error { return e.Cause }

// CauseName returns the short stable name of err's cause ("timeout",
// "memory_limit", "trap" …), or "error" when err is no *CallError.
func CauseName(err error) string {
	var ce *CallError
	if errors.As(err, &ce) {
		if n, ok := causeNames[ce.Cause]; ok {
			return n
		}
	}
	return "error"
}

func callErr(cause error, format string, args ...any) *CallError {
	return &CallError{Cause: cause, Detail: fmt.Sprintf(format, args...)}
}

// firstLine keeps what a user should see of a wazero error: its first line,
// without the wasm and Go stack traces that follow.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSuffix(strings.TrimSpace(s), "(recovered by wazero)")
	return strings.TrimSpace(s)
}
