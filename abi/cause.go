package abi

// Cause is why an attempt, a step or a run stopped short of completing: the
// short stable name that the journal records, `12fa status` shows, and the
// error documents of host functions carry as their code.
//
// Causes are persisted, so a name is never renamed or reused; new causes are
// added. A journal may hold a name this version does not know (written by a
// newer one): it reads as that string, and Known reports false.
type Cause string

// Failures of an attempt that the host reports (host.CallError).
const (
	// CauseTimeout: the attempt ran past its deadline, or the step's
	// total_timeout was spent.
	CauseTimeout Cause = "timeout"
	// CauseMemoryLimit: the guest trapped with its linear memory at the cap.
	CauseMemoryLimit Cause = "memory_limit"
	// CauseTrap: the guest trapped (unreachable, out-of-bounds access, stack
	// overflow, a Go panic in the guest …).
	CauseTrap Cause = "trap"
	// CauseOutputTooLarge: the step's output is larger than its max_output.
	CauseOutputTooLarge Cause = "output_too_large"
	// CauseBadHostCall: the guest called a host function against the ABI.
	CauseBadHostCall Cause = "bad_host_call"
	// CausePluginError: the guest returned an error of its own (its
	// ErrorDoc says which).
	CausePluginError Cause = "plugin_error"
	// CauseNoFunction: the plugin does not export the function to call.
	CauseNoFunction Cause = "no_function"
	// CauseCanceled: the caller stopped the call; not a failure of the step.
	CauseCanceled Cause = "canceled"
	// CauseInstantiate: the plugin could not be instantiated.
	CauseInstantiate Cause = "instantiate"
	// CauseBadGrant: a file grant of the step cannot be used (its host
	// directory is missing, say).
	CauseBadGrant Cause = "bad_grant"
	// CauseInputTimeout: a question the step asked expired without an
	// answer or a default.
	CauseInputTimeout Cause = "input_timeout"
	// CauseUnknown: the host failed in a way no other cause names.
	CauseUnknown Cause = "error"
)

// Failures the runner finds around a call.
const (
	// CauseInputTooLarge: the envelope is over MaxInputBytes.
	CauseInputTooLarge Cause = "input_too_large"
	// CauseRecordTooLarge: the attempt's completion record is over the
	// journal's record limit; nothing was written.
	CauseRecordTooLarge Cause = "record_too_large"
	// CausePluginMissing: the step's plugin file cannot be read.
	CausePluginMissing Cause = "plugin_missing"
	// CauseInvalidPlugin: the step's plugin is no usable Wasm module.
	CauseInvalidPlugin Cause = "invalid_plugin"
	// CausePluginPin: the plugin's sha256 is not the one the manifest pins.
	CausePluginPin Cause = "plugin_pin"
	// CausePluginChanged: the plugin changed since the run started, and
	// resume was not told to accept it (--upgrade).
	CausePluginChanged Cause = "plugin_changed"
)

// Why a run waits or stops without a step failing by itself.
const (
	// CauseWaiting: a step asked questions nobody has answered yet.
	CauseWaiting Cause = "waiting"
	// CauseInputs: the manifest's [[input]] questions wait for answers.
	CauseInputs Cause = "inputs"
	// CauseInterrupted: a non-idempotent step was interrupted, and a person
	// must say whether to run it again, mark it done or abort.
	CauseInterrupted Cause = "interrupted"
	// CauseAborted: a person aborted the run after an interrupted step.
	CauseAborted Cause = "aborted"
	// CauseRequested: a person asked for the run's rollback.
	CauseRequested Cause = "requested"
	// CauseRollback: a step's rollback failed for good.
	CauseRollback Cause = "rollback"
)

// Why an HTTP request of a step got no response (HostError.Code). A step
// that fails with one as its error code is retried as the cause says.
const (
	// CauseHTTPDenied: the scheme, host, port or method is not in the
	// step's allow.hosts. Not retried.
	CauseHTTPDenied Cause = "http_denied"
	// CauseHTTPRedirectDenied: a redirect led somewhere allow.hosts does not
	// grant, or there were more hops than allowed. Not retried.
	CauseHTTPRedirectDenied Cause = "http_redirect_denied"
	// CauseHTTPBlockedAddress: the address dialed is loopback, private,
	// link-local, metadata or otherwise not public, and allow.private does
	// not grant it. Not retried.
	CauseHTTPBlockedAddress Cause = "http_blocked_address"
	// CauseHTTPBadRequest: the request cannot be sent as given (a bad URL,
	// header or body). Not retried.
	CauseHTTPBadRequest Cause = "http_bad_request"
	// CauseHTTPTooLarge: the response's body or headers are over the
	// step's limits. Not retried.
	CauseHTTPTooLarge Cause = "http_too_large"
	// CauseHTTPTimeout: the request ran past its timeout or the attempt's
	// deadline, or stalled with no byte for the stall timeout. Retried.
	CauseHTTPTimeout Cause = "http_timeout"
	// CauseHTTPNetwork: name resolution, connection or TLS failed. Retried.
	CauseHTTPNetwork Cause = "http_network"
	// CauseHTTPLimit: the attempt sent as many requests as it may. Not
	// retried.
	CauseHTTPLimit Cause = "http_limit"
	// CauseSecretNotGranted: a request names a secret where it may not go
	// (in its URL or body, or for an origin the secret is not granted
	// for); nothing was sent. Not retried.
	CauseSecretNotGranted Cause = "secret_not_granted"
	// CauseSecretMissing: a secret the step is granted has no value (its
	// environment variable is unset in the host). The run pauses for a
	// person.
	CauseSecretMissing Cause = "secret_missing"
	// CauseExecDenied: the command, an argument, the working directory or
	// an environment variable is not allowed by the step's grants; nothing
	// ran. Not retried.
	CauseExecDenied Cause = "exec_denied"
	// CauseExecTimeout: the command (and every process it started) was
	// killed at its timeout or the attempt's deadline. Retried.
	CauseExecTimeout Cause = "exec_timeout"
	// CauseExecFailed: the command could not be started. Not retried.
	CauseExecFailed Cause = "exec_failed"
	// CauseHTTPOutcomeUnknown: a request whose effect must not happen twice
	// was sent by an attempt that died before its response was recorded;
	// it is not sent again. The run pauses for a person.
	CauseHTTPOutcomeUnknown Cause = "http_outcome_unknown"
	// CauseReplayDiverged: a step run again (after a question or a crash)
	// made another call where an earlier attempt made one whose effect must
	// not happen twice (a POST of a step that is not idempotent). The run
	// pauses for a person.
	CauseReplayDiverged Cause = "replay_diverged"
)

// causes lists every Cause above, for Known.
var causes = map[Cause]bool{
	CauseTimeout: true, CauseMemoryLimit: true, CauseTrap: true, CauseOutputTooLarge: true,
	CauseBadHostCall: true, CausePluginError: true, CauseNoFunction: true, CauseCanceled: true,
	CauseInstantiate: true, CauseBadGrant: true, CauseInputTimeout: true, CauseUnknown: true,
	CauseInputTooLarge: true, CauseRecordTooLarge: true, CausePluginMissing: true,
	CauseInvalidPlugin: true, CausePluginPin: true, CausePluginChanged: true,
	CauseWaiting: true, CauseInputs: true, CauseInterrupted: true, CauseAborted: true,
	CauseRequested: true, CauseRollback: true,
	CauseHTTPDenied: true, CauseHTTPRedirectDenied: true, CauseHTTPBlockedAddress: true,
	CauseHTTPBadRequest: true, CauseHTTPTooLarge: true, CauseHTTPTimeout: true,
	CauseHTTPNetwork: true, CauseHTTPLimit: true, CauseHTTPOutcomeUnknown: true, CauseReplayDiverged: true,
	CauseSecretNotGranted: true, CauseSecretMissing: true,
	CauseExecDenied: true, CauseExecTimeout: true, CauseExecFailed: true,
}

// HostCall reports whether c is why a host call (HTTP, a command) got no result: a
// cause a step may return as its own error code, which the runner then
// records as the step's cause and retries as that cause says.
func (c Cause) HostCall() bool {
	switch c {
	case CauseHTTPDenied, CauseHTTPRedirectDenied, CauseHTTPBlockedAddress, CauseHTTPBadRequest,
		CauseHTTPTooLarge, CauseHTTPTimeout, CauseHTTPNetwork, CauseHTTPLimit,
		CauseHTTPOutcomeUnknown, CauseReplayDiverged, CauseSecretNotGranted, CauseSecretMissing,
		CauseExecDenied, CauseExecTimeout, CauseExecFailed:
		return true
	}
	return false
}

// NeedsPerson reports whether a step that failed with c must wait for a
// person whatever its on_failure says: the run pauses, never fails or
// rolls back on its own.
func (c Cause) NeedsPerson() bool {
	return c == CauseHTTPOutcomeUnknown || c == CauseReplayDiverged || c == CauseSecretMissing
}

// Known reports whether c is one of the causes this version defines.
func (c Cause) Known() bool { return causes[c] }

// Causes returns every cause this version defines, in no order.
func Causes() []Cause {
	out := make([]Cause, 0, len(causes))
	for c := range causes {
		out = append(out, c)
	}
	return out
}
