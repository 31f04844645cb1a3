package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/12fa/12fa/abi"
)

// Causes of a failed call. A *CallError wraps exactly one of them; test with
// errors.Is, or name it with CauseOf.
var (
	// ErrTimeout: the call ran past its deadline and was stopped.
	ErrTimeout error = &causeError{abi.CauseTimeout, "timeout"}
	// ErrMemoryLimit: the guest trapped with a linear memory at its cap.
	ErrMemoryLimit error = &causeError{abi.CauseMemoryLimit, "memory limit reached"}
	// ErrTrap: the guest trapped (unreachable, out-of-bounds access, stack
	// overflow, a Go panic in the guest …).
	ErrTrap error = &causeError{abi.CauseTrap, "trap"}
	// ErrOutputTooLarge: the guest set an output larger than allowed.
	ErrOutputTooLarge error = &causeError{abi.CauseOutputTooLarge, "output too large"}
	// ErrBadHostCall: the guest called a host function against the ABI.
	ErrBadHostCall error = &causeError{abi.CauseBadHostCall, "bad host function call"}
	// ErrPluginFailed: the guest returned a failure of its own.
	ErrPluginFailed error = &causeError{abi.CausePluginError, "plugin returned an error"}
	// ErrNoFunction: the plugin does not export the function to call.
	ErrNoFunction error = &causeError{abi.CauseNoFunction, "function not exported"}
	// ErrCanceled: the caller canceled the call (not a failure of the step).
	ErrCanceled error = &causeError{abi.CauseCanceled, "canceled"}
	// ErrInstantiate: the plugin could not be instantiated.
	ErrInstantiate error = &causeError{abi.CauseInstantiate, "instantiate failed"}
	// ErrInputExpired is what an InputProvider returns (wrapped) for a
	// question that expired with no answer and no default.
	ErrInputExpired error = &causeError{abi.CauseInputTimeout, "question expired without an answer"}
	// ErrGrant: a file grant could not be set up (the directory is missing,
	// the guest path is bad).
	ErrGrant error = &causeError{abi.CauseBadGrant, "file grant unusable"}
)

// causeError is a cause of a failed call: its message and the abi.Cause it
// is journaled as.
type causeError struct {
	cause abi.Cause
	msg   string
}

func (e *causeError) Error() string { return e.msg }

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

// CauseOf returns the cause err is journaled as: that of the *CallError it
// wraps, or abi.CauseUnknown.
func CauseOf(err error) abi.Cause {
	var ce *causeError
	if errors.As(err, &ce) {
		return ce.cause
	}
	return abi.CauseUnknown
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
