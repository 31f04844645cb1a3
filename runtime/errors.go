package runtime

import (
	"errors"
	"fmt"

	"github.com/12fa/12fa/abi"
)

var (
	// ErrStepFailed: a step failed and the run stopped; StepError says which.
	ErrStepFailed = errors.New("step failed")
	// ErrInterrupted: a non-idempotent step was interrupted in an earlier
	// process; resume needs RerunInterrupted or MarkDone.
	ErrInterrupted = errors.New("step was interrupted and is not idempotent")
	// ErrPluginChanged: a plugin's bytes differ from those the run started
	// with; resume needs Upgrade.
	ErrPluginChanged = errors.New("plugin changed since the run started")
	// ErrPluginPin: a plugin's bytes do not match the manifest's sha256 pin.
	ErrPluginPin = errors.New("plugin does not match its sha256 pin")
	// ErrManifestChanged: the manifest's steps differ from the run's.
	ErrManifestChanged = errors.New("manifest steps differ from the run's")
	// ErrRunPaused: a step failed for good and its on_failure is "pause":
	// the run stays resumable, and resume tries the step again.
	ErrRunPaused = errors.New("run paused")
	// ErrWaiting: a step asked questions nobody has answered yet; the run
	// goes on (the step runs again) once they are answered.
	ErrWaiting = errors.New("waiting for answers")
	// ErrRolledBack: a step failed for good and the run was rolled back.
	ErrRolledBack = errors.New("run rolled back")
	// ErrRollbackFailed: a step's rollback failed for good; the run is in
	// rollback_failed and Rollback tries again.
	ErrRollbackFailed = errors.New("rollback failed")
	// ErrRunFailed: the run failed earlier; resume needs RetryFailed.
	ErrRunFailed = errors.New("run failed")
	// ErrRunActive: the run is already being executed in this process.
	ErrRunActive = errors.New("run is already running in this process")
	// ErrRunNotFound: no run has the given id.
	ErrRunNotFound = errors.New("run not found")
	// ErrCanceled: the context was canceled while a step ran; the step stays
	// interrupted and is handled on resume.
	ErrCanceled = errors.New("run canceled")
)

// StepError reports the step and attempt that failed. Use errors.As to get
// it and errors.Is on it to check the cause (one of this package's Err*
// values, and for a failed call also the host's cause).
type StepError struct {
	Step    string
	Attempt int
	// Cause is the short name of the cause, as recorded in the journal
	// ("timeout", "memory_limit", "trap", "plugin_error" …).
	Cause abi.Cause
	Err   error
}

func (e *StepError) Error() string {
	if e.Attempt > 0 {
		return fmt.Sprintf("step %q (attempt %d): %v", e.Step, e.Attempt, e.Err)
	}
	return fmt.Sprintf("step %q: %v", e.Step, e.Err)
}

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }
