package state

import (
	"encoding/json"
	"fmt"
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

	// EventStepRetry: when the next attempt may start, and when the series
	// of attempts it belongs to began (for total_timeout).
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

// validate checks a batch of records against runs before any of it is
// written, so that apply cannot fail on what reached the disk. It does not
// change runs. An error means the caller is not using the journal as 12fa
// does.
func validate(runs map[string]*Run, recs []*Record) error {
	started := map[string]*Record{}
	for _, rec := range recs {
		if rec.Run == "" {
			return fmt.Errorf("%s record without a run", rec.Type)
		}
		if rec.Type == EventRunStarted {
			if _, dup := runs[rec.Run]; dup {
				return fmt.Errorf("run %q started twice", rec.Run)
			}
			if _, dup := started[rec.Run]; dup {
				return fmt.Errorf("run %q started twice", rec.Run)
			}
			ids := make(map[string]bool, len(rec.Steps))
			for _, d := range rec.Steps {
				if d.ID == "" || ids[d.ID] {
					return fmt.Errorf("run %q declares step %q twice or empty", rec.Run, d.ID)
				}
				ids[d.ID] = true
			}
			started[rec.Run] = rec
			continue
		}
		if !knownEvents[rec.Type] {
			return fmt.Errorf("unknown record type %q", rec.Type)
		}
		hasStep := func(id string) bool {
			if r, ok := runs[rec.Run]; ok {
				_, ok := r.index[id]
				return ok
			}
			for _, d := range started[rec.Run].Steps {
				if d.ID == id {
					return true
				}
			}
			return false
		}
		if _, ok := runs[rec.Run]; !ok && started[rec.Run] == nil {
			return fmt.Errorf("%w %q", ErrUnknownRun, rec.Run)
		}
		if stepEvents[rec.Type] && rec.Step == "" {
			return fmt.Errorf("%s record without a step", rec.Type)
		}
		if rec.Step != "" && !hasStep(rec.Step) {
			return fmt.Errorf("run %q has no step %q", rec.Run, rec.Step)
		}
		if (rec.Type == EventHostCall || rec.Type == EventHostCallStarted) && (rec.Call == nil || rec.Call.Key == "") {
			return fmt.Errorf("%s record without a call", rec.Type)
		}
	}
	return nil
}

var knownEvents = map[EventType]bool{
	EventRunStarted: true, EventRunResumed: true, EventStepStarted: true, EventStepCompleted: true,
	EventStepFailed: true, EventStepMarkedDone: true, EventPluginUpgraded: true,
	EventRunCompleted: true, EventRunFailed: true, EventStepRetry: true, EventRunPaused: true,
	EventRunRollingBack: true, EventRollbackStarted: true, EventRollbackCompleted: true,
	EventRollbackFailed: true, EventRunRolledBack: true, EventRunRollbackFailed: true,
	EventStepWaiting: true, EventRunWaiting: true, EventRunRestored: true,
	EventHostCallStarted: true, EventHostCall: true,
}

var stepEvents = map[EventType]bool{
	EventStepStarted: true, EventStepCompleted: true, EventStepFailed: true,
	EventStepMarkedDone: true, EventPluginUpgraded: true, EventStepRetry: true,
	EventRollbackStarted: true, EventRollbackCompleted: true, EventRollbackFailed: true,
	EventStepWaiting: true, EventHostCallStarted: true, EventHostCall: true,
}

// apply folds one record into runs. Records read back from a journal are
// validated first, so an error here means the file was not written by 12fa.
func apply(runs map[string]*Run, rec *Record) error {
	if err := validate(runs, []*Record{rec}); err != nil {
		return err
	}
	if rec.Type == EventRunStarted {
		r := &Run{
			ID: rec.Run, Workflow: rec.Workflow, Manifest: rec.Manifest,
			Status: RunRunning, CreatedAt: rec.Time, UpdatedAt: rec.Time,
			Steps: make([]Step, len(rec.Steps)), index: make(map[string]int, len(rec.Steps)),
		}
		for i, d := range rec.Steps {
			r.Steps[i] = Step{ID: d.ID, Plugin: d.Plugin, Status: StepPending}
			r.index[d.ID] = i
		}
		runs[rec.Run] = r
		return nil
	}
	r := runs[rec.Run]
	r.UpdatedAt = rec.Time
	var s *Step
	if rec.Step != "" {
		s, _ = r.Step(rec.Step)
	}
	switch rec.Type {
	case EventRunResumed:
		r.Status = RunRunning
		r.Cause, r.Error, r.Pending = "", "", nil
	case EventStepStarted:
		s.Status, s.Attempt, s.StartedAt = StepRunning, rec.Attempt, rec.Time
		s.EndedAt, s.DurationMS, s.Cause, s.Error = time.Time{}, 0, "", ""
		s.NextAttemptAt, s.AttemptsLeft, s.Pending = time.Time{}, 0, nil
		if rec.Plugin != "" {
			s.Plugin = rec.Plugin
		}
	case EventStepCompleted, EventStepMarkedDone:
		s.Status, s.EndedAt, s.DurationMS = StepCompleted, rec.Time, rec.DurationMS
		s.Output, s.OutputSize, s.OutputBinary = rec.Output, len(rec.Output), rec.OutputBinary
		s.MarkedDone = rec.Type == EventStepMarkedDone
		s.ContextWrites, s.ForkedFrom, s.Calls = rec.Context, rec.ForkedFrom, nil
		s.Cause, s.Error = "", ""
		if rec.Attempt > 0 {
			s.Attempt = rec.Attempt
		}
		for k, v := range rec.Context {
			if r.Context == nil {
				r.Context = make(map[string]json.RawMessage, len(rec.Context))
			}
			if string(v) == "null" {
				delete(r.Context, k)
				continue
			}
			r.Context[k] = v
		}
	case EventStepFailed:
		s.Status, s.EndedAt, s.DurationMS = StepFailed, rec.Time, rec.DurationMS
		s.Cause, s.Error, s.Calls = rec.Cause, rec.Error, nil
		if rec.Attempt > 0 {
			s.Attempt = rec.Attempt
		}
	case EventStepWaiting:
		s.Status, s.EndedAt, s.DurationMS, s.Pending = StepWaiting, rec.Time, rec.DurationMS, rec.Pending
	case EventStepRetry:
		s.NextAttemptAt, s.SeriesStart, s.AttemptsLeft = rec.NotBefore, rec.SeriesStart, rec.Remaining
	case EventPluginUpgraded:
		s.Plugin = rec.Plugin
	case EventHostCallStarted, EventHostCall:
		// Copy on write: clones of the run (Store.Run) share the slice.
		c := *rec.Call
		if n := len(s.Calls); n > 0 && s.Calls[n-1].Seq == c.Seq && s.Calls[n-1].Result == nil {
			calls := slices.Clone(s.Calls)
			calls[n-1] = c // the result of the call whose start was recorded
			s.Calls = calls
		} else {
			s.Calls = append(slices.Clip(s.Calls), c)
		}
	case EventRunCompleted:
		r.Status = RunCompleted
	case EventRunFailed:
		r.Status, r.Cause, r.Error = RunFailed, rec.Cause, rec.Error
	case EventRunPaused:
		r.Status, r.Cause, r.Error = RunPaused, rec.Cause, rec.Error
	case EventRunWaiting:
		r.Status, r.Cause, r.Error, r.Pending = RunWaiting, rec.Cause, rec.Error, rec.Pending
	case EventRunRestored:
		r.Status, r.Cause, r.Error, r.Pending = RunRunning, "", "", nil
		r.Context = nil
		if len(rec.Context) > 0 {
			r.Context = maps.Clone(rec.Context)
		}
		for i := r.index[rec.Step] + 1; i < len(r.Steps); i++ {
			r.Steps[i] = Step{ID: r.Steps[i].ID, Plugin: r.Steps[i].Plugin, Status: StepPending}
		}
	case EventRunRollingBack:
		r.Status, r.Cause, r.Error = RunRollingBack, rec.Cause, rec.Error
	case EventRollbackStarted:
		s.Rollback, s.RollbackAttempt, s.RollbackError = RollbackRunning, rec.Attempt, ""
	case EventRollbackCompleted:
		s.Rollback = RollbackCompleted
	case EventRollbackFailed:
		s.Rollback, s.RollbackError = RollbackFailed, rec.Error
	case EventRunRolledBack:
		r.Status = RunRolledBack
	case EventRunRollbackFailed:
		r.Status, r.Cause, r.Error = RunRollbackFailed, rec.Cause, rec.Error
	}
	return nil
}
