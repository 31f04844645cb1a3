package state

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/12fa/12fa/abi"
)

// EventType names what a journal record says happened.
type EventType string

// Journal events.
const (
	// EventRunStarted opens a run and declares its steps.
	EventRunStarted EventType = "run_started"
	// EventRunResumed marks a process taking an interrupted run back up.
	EventRunResumed EventType = "run_resumed"
	// EventStepStarted is written before an attempt begins.
	EventStepStarted EventType = "step_started"
	// EventStepCompleted ends an attempt with its output and context writes.
	EventStepCompleted EventType = "step_completed"
	// EventStepFailed ends an attempt with its cause.
	EventStepFailed EventType = "step_failed"
	// EventStepWaiting ends an attempt that asked questions nobody has
	// answered yet (Pending); the step runs again once they are.
	EventStepWaiting EventType = "step_waiting"
	// EventRunWaiting stops a run until its questions are answered.
	EventRunWaiting EventType = "run_waiting"
	// EventRunRestored brings a run back to just after Step completed: the
	// later steps are pending again and the context is Context.
	EventRunRestored EventType = "run_restored"
	// EventStepRetry schedules the next attempt of a failed step (NotBefore);
	// a resume waits for it rather than starting over.
	EventStepRetry EventType = "step_retry"
	// EventStepMarkedDone completes an interrupted step by a person's say-so,
	// without running it again.
	EventStepMarkedDone EventType = "step_marked_done"
	// EventPluginUpgraded records that a step's plugin changed and the change
	// was accepted.
	EventPluginUpgraded EventType = "plugin_upgraded"
	// EventRunCompleted ends a run whose steps all completed.
	EventRunCompleted EventType = "run_completed"
	// EventRunFailed ends a run that cannot go on without help.
	EventRunFailed EventType = "run_failed"
	// EventRunPaused stops a run whose step failed for good, keeping it
	// resumable: resume tries the step again.
	EventRunPaused EventType = "run_paused"
	// EventRunRollingBack starts a run's rollback (saga): the failed step's
	// rollback, then those of completed steps in reverse order.
	EventRunRollingBack EventType = "run_rolling_back"
	// EventRollbackStarted, EventRollbackCompleted and EventRollbackFailed
	// journal each attempt of a step's rollback, like a step's.
	EventRollbackStarted   EventType = "rollback_started"
	EventRollbackCompleted EventType = "rollback_completed"
	EventRollbackFailed    EventType = "rollback_failed"
	// EventRollbackRetry schedules the next attempt of a failed rollback,
	// as EventStepRetry does a step's.
	EventRollbackRetry EventType = "rollback_retry"
	// EventRunRolledBack ends a rollback whose every step succeeded.
	EventRunRolledBack EventType = "run_rolled_back"
	// EventRunRollbackFailed ends a rollback that could not finish.
	EventRunRollbackFailed EventType = "run_rollback_failed"
	// EventHostCallStarted is made durable before a host call whose effect
	// must not happen twice is sent (a POST of a step that is not
	// idempotent): one without its EventHostCall means nobody knows whether
	// it took effect.
	EventHostCallStarted EventType = "host_call_started"
	// EventHostCall records a host call of an attempt and its result
	// (Call), so that the step's next attempt after a suspension or a crash
	// gets the result back instead of calling again.
	EventHostCall EventType = "host_call"
)

// Records the store writes for itself; Append refuses them from callers.
const (
	// EventJournalBase is the first record of a compacted journal: its Seq
	// is the sequence of the last record of the journal it replaced.
	EventJournalBase EventType = "journal_base"
	// EventRunState carries a run's whole state (State), folded from
	// records a compaction dropped or read back from the run's file when a
	// finished run is taken up again. It replaces what the journal said of
	// the run before it.
	EventRunState EventType = "run_state"
	// EventStepState follows a run_state record for each step with an
	// output, context writes or recorded calls, which run_state leaves out
	// so that no record holds more than one step's worth (StepState).
	EventStepState EventType = "step_state"
)

// Record is one line of the journal.
type Record struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Type    EventType `json:"type"`
	Run     string    `json:"run"`
	Step    string    `json:"step,omitempty"`
	Attempt int       `json:"attempt,omitempty"`

	// EventRunStarted.
	Workflow string     `json:"workflow,omitempty"`
	Manifest string     `json:"manifest,omitempty"`
	Steps    []StepDecl `json:"steps,omitempty"`

	// EventStepStarted and EventPluginUpgraded: the sha256 of the plugin.
	Plugin string `json:"plugin,omitempty"`

	// EventStepCompleted and EventStepMarkedDone.
	Output json.RawMessage `json:"output,omitempty"`
	// OutputBinary: the step's output was bytes that are not UTF-8; Output
	// is a JSON string of their base64.
	OutputBinary bool                       `json:"output_binary,omitempty"`
	Context      map[string]json.RawMessage `json:"context,omitempty"`

	// EventStepCompleted and EventStepFailed: how long the attempt ran.
	DurationMS float64 `json:"duration_ms,omitempty"`
	// EventStepFailed and EventRunFailed.
	Cause abi.Cause `json:"cause,omitempty"`
	Error string    `json:"error,omitempty"`

	// EventStepRetry and EventRollbackRetry: when the next attempt may
	// start, and when the series of attempts it belongs to began (for
	// total_timeout).
	NotBefore   time.Time `json:"not_before,omitzero"`
	SeriesStart time.Time `json:"series_start,omitzero"`
	// Remaining counts the attempts the series still allows, the scheduled
	// one included.
	Remaining int `json:"remaining,omitempty"`

	// EventStepWaiting: the ids of the questions waiting for an answer.
	Pending []string `json:"pending,omitempty"`

	// EventStepCompleted copied from another run by a fork: that run's id.
	ForkedFrom string `json:"forked_from,omitempty"`

	// EventHostCallStarted and EventHostCall.
	Call *HostCall `json:"call,omitempty"`

	// EventRunState and EventStepState.
	State     *Run  `json:"state,omitempty"`
	StepState *Step `json:"step_state,omitempty"`
}

// HostCall is one recorded host call of an attempt (an HTTP request).
type HostCall struct {
	// Seq numbers the attempt's host calls from 0.
	Seq  int    `json:"seq"`
	Kind string `json:"kind"` // "http"
	// Key is a hash of the request as the step made it (before the host
	// added any secret); a later attempt's call matches only with the
	// same Seq and Key.
	Key    string `json:"key"`
	Method string `json:"method,omitempty"`
	// Origin is where the request went (scheme://host:port), for people.
	Origin string `json:"origin,omitempty"`
	// Result is the result document (an abi.HTTPResponse); nil in an
	// EventHostCallStarted.
	Result json.RawMessage `json:"result,omitempty"`
	// Blob is the sha256 of the blob holding the result's body, when it
	// was too large to go in the record.
	Blob string `json:"blob,omitempty"`
}

// StepDecl is a step as declared when its run started.
type StepDecl struct {
	ID     string `json:"id"`
	Plugin string `json:"plugin"` // sha256, hex
}

// RunStatus is where a run stands.
type RunStatus string

// Run statuses.
const (
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
	RunPaused    RunStatus = "paused"
	// RunWaiting: a step asked questions; the run goes on once answered.
	RunWaiting RunStatus = "waiting"
	// RunRollingBack: the rollback started and has not ended (a resume
	// continues it).
	RunRollingBack    RunStatus = "rolling_back"
	RunRolledBack     RunStatus = "rolled_back"
	RunRollbackFailed RunStatus = "rollback_failed"
)

// RollbackStatus is where a step's rollback stands ("" when none ran).
type RollbackStatus string

// Rollback statuses.
const (
	RollbackRunning   RollbackStatus = "running"
	RollbackCompleted RollbackStatus = "completed"
	RollbackFailed    RollbackStatus = "failed"
)

// StepStatus is where a step stands.
type StepStatus string

// Step statuses.
const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepCompleted StepStatus = "completed"
	StepFailed    StepStatus = "failed"
	// StepWaiting: the step asked questions that have no answer yet.
	StepWaiting StepStatus = "waiting"
)

// Run is what the journal says about one run.
type Run struct {
	ID        string                     `json:"id"`
	Workflow  string                     `json:"workflow"`
	Manifest  string                     `json:"manifest,omitempty"`
	Status    RunStatus                  `json:"status"`
	CreatedAt time.Time                  `json:"created_at"`
	UpdatedAt time.Time                  `json:"updated_at"`
	Steps     []Step                     `json:"steps"`
	Context   map[string]json.RawMessage `json:"context,omitempty"`
	Cause     abi.Cause                  `json:"cause,omitempty"`
	Error     string                     `json:"error,omitempty"`
	// Pending lists questions the run itself waits on (not a step's).
	Pending []string `json:"pending,omitempty"`

	index map[string]int
	// seq is the sequence of the last record folded into the run.
	seq uint64
	// done counts the completed steps when counted (a run folded from
	// its start; not one decoded from a document).
	done    int
	counted bool
}

// Finished reports whether a run in this status has ended: completed,
// failed, rolled back or with a failed rollback. Nothing runs it again
// unless a person asks (resume --retry-failed, rollback, restore); until
// then its state lives in its run file, not in the journal.
func (st RunStatus) Finished() bool {
	switch st {
	case RunCompleted, RunFailed, RunRolledBack, RunRollbackFailed:
		return true
	}
	return false
}

// Step is what the journal says about one step of a run.
type Step struct {
	ID         string          `json:"id"`
	Plugin     string          `json:"plugin"`
	Status     StepStatus      `json:"status"`
	Attempt    int             `json:"attempt"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	EndedAt    time.Time       `json:"ended_at,omitzero"`
	DurationMS float64         `json:"duration_ms,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	OutputSize int             `json:"output_size"`
	// OutputBinary: Output is a JSON string holding the base64 of the
	// bytes the step returned (they were not UTF-8).
	OutputBinary bool      `json:"output_binary,omitempty"`
	MarkedDone   bool      `json:"marked_done,omitempty"`
	Cause        abi.Cause `json:"cause,omitempty"`
	Error        string    `json:"error,omitempty"`
	// NextAttemptAt is set while a retry is scheduled; SeriesStart is when
	// its series of attempts began.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	SeriesStart   time.Time `json:"series_start,omitzero"`
	AttemptsLeft  int       `json:"attempts_left,omitempty"`
	// Pending lists the questions a waiting step waits for.
	Pending []string `json:"pending,omitempty"`
	// ContextWrites are the context writes the step's completion made.
	ContextWrites map[string]json.RawMessage `json:"context_writes,omitempty"`
	// ForkedFrom names the run this step's result was copied from.
	ForkedFrom string `json:"forked_from,omitempty"`
	// Calls are the host calls recorded since the step's last failed
	// attempt (in the order made), which its next attempt replays; they
	// are dropped when an attempt fails or the step completes.
	Calls []HostCall `json:"calls,omitempty"`
	// Rollback and RollbackAttempt follow the step's rollback.
	Rollback        RollbackStatus `json:"rollback,omitempty"`
	RollbackAttempt int            `json:"rollback_attempt,omitempty"`
	RollbackError   string         `json:"rollback_error,omitempty"`
	// RollbackNextAt, RollbackSeriesStart and RollbackAttemptsLeft are the
	// schedule of the rollback's next attempt, as NextAttemptAt and the
	// others are a step's.
	RollbackNextAt       time.Time `json:"rollback_next_at,omitzero"`
	RollbackSeriesStart  time.Time `json:"rollback_series_start,omitzero"`
	RollbackAttemptsLeft int       `json:"rollback_attempts_left,omitempty"`
}

// Step returns the step with the given id.
func (r *Run) Step(id string) (*Step, bool) {
	i, ok := r.index[id]
	if !ok {
		return nil, false
	}
	return &r.Steps[i], true
}

// Clone returns a copy of r that shares no mutable state with it. Outputs
// and context values are immutable once recorded and are shared.
func (r *Run) Clone() Run {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	c.Context = maps.Clone(r.Context)
	c.index = maps.Clone(r.index)
	return c
}

// reindex rebuilds the step index of a run decoded from JSON.
func (r *Run) reindex() {
	r.index = make(map[string]int, len(r.Steps))
	for i, s := range r.Steps {
		r.index[s.ID] = i
	}
}
