package runtime

import (
	"encoding/json"
	"time"

	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/inputs"
)

// EventType names a runtime event.
type EventType string

// Runtime events, in the order a run produces them.
const (
	// EventPluginsLoaded: every plugin of the workflow is compiled (or came
	// from the cache); Steps is the number of distinct plugins.
	EventPluginsLoaded EventType = "plugins_loaded"
	EventRunStarted    EventType = "run_started"
	EventRunResumed    EventType = "run_resumed"
	EventStepReplayed  EventType = "step_replayed"
	EventStepStarted   EventType = "step_started"
	EventStepLog       EventType = "step_log"
	EventStepCompleted EventType = "step_completed"
	// EventStepWaiting: the step asked questions (Questions) nobody has
	// answered yet; the run waits.
	EventStepWaiting EventType = "step_waiting"
	// EventStepMarkedDone: an interrupted step was completed without running
	// it (RunOptions.MarkDone).
	EventStepMarkedDone EventType = "step_marked_done"
	EventStepFailed     EventType = "step_failed"
	// Rollback events: a step's rollback attempt started, succeeded or
	// failed (RetryIn > 0 when another attempt follows), and the run's
	// rollback ended.
	EventRollbackStarted   EventType = "rollback_started"
	EventRollbackCompleted EventType = "rollback_completed"
	EventRollbackFailed    EventType = "rollback_failed"
	EventRunRolledBack     EventType = "run_rolled_back"
	// EventHostCall: a step's attempt made a host call (Call), live or
	// replayed from an earlier attempt's record.
	EventHostCall     EventType = "host_call"
	EventRunCompleted EventType = "run_completed"
	EventRunFailed    EventType = "run_failed"
)

// Event is something that happened in a run, for progress output.
type Event struct {
	Time     time.Time
	Type     EventType
	Run      string
	Workflow string
	// Steps is the number of steps (run events).
	Steps int
	// Step, Index (0-based) and Attempt identify the step (step events).
	Step    string
	Index   int
	Attempt int
	// Output is the step's output (step_completed, step_replayed).
	Output json.RawMessage
	// Duration is how long the attempt ran (step_completed, step_failed).
	Duration time.Duration
	// Log is the line a step logged (step_log).
	Log *host.LogLine
	// Err is why a step or run failed.
	Err error
	// Questions are the unanswered questions of a step_waiting event.
	Questions []inputs.Question
	// Call is the host call of a host_call event.
	Call *CallInfo
	// RetryIn is the wait before the next attempt (step_failed with a retry
	// scheduled; 0 when the step failed for good).
	RetryIn time.Duration
}
