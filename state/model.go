package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
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
	Output  json.RawMessage            `json:"output,omitempty"`
	Context map[string]json.RawMessage `json:"context,omitempty"`

	// EventStepCompleted and EventStepFailed: how long the attempt ran.
	DurationMS float64 `json:"duration_ms,omitempty"`
	// EventStepFailed and EventRunFailed.
	Cause string `json:"cause,omitempty"`
	Error string `json:"error,omitempty"`
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
)

// StepStatus is where a step stands.
type StepStatus string

// Step statuses.
const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepCompleted StepStatus = "completed"
	StepFailed    StepStatus = "failed"
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
	Cause     string                     `json:"cause,omitempty"`
	Error     string                     `json:"error,omitempty"`

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
	MarkedDone bool            `json:"marked_done,omitempty"`
	Cause      string          `json:"cause,omitempty"`
	Error      string          `json:"error,omitempty"`
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

// apply folds one record into runs. It checks that the record makes sense
// where it stands; an error means the journal is not one 12fa wrote.
func apply(runs map[string]*Run, rec *Record) error {
	if rec.Type == EventRunStarted {
		if _, dup := runs[rec.Run]; dup {
			return fmt.Errorf("run %q started twice", rec.Run)
		}
		r := &Run{
			ID: rec.Run, Workflow: rec.Workflow, Manifest: rec.Manifest,
			Status: RunRunning, CreatedAt: rec.Time, UpdatedAt: rec.Time,
			Steps: make([]Step, len(rec.Steps)), index: make(map[string]int, len(rec.Steps)),
		}
		for i, d := range rec.Steps {
			if _, dup := r.index[d.ID]; dup {
				return fmt.Errorf("run %q declares step %q twice", rec.Run, d.ID)
			}
			r.Steps[i] = Step{ID: d.ID, Plugin: d.Plugin, Status: StepPending}
			r.index[d.ID] = i
		}
		runs[rec.Run] = r
		return nil
	}
	r, ok := runs[rec.Run]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownRun, rec.Run)
	}
	r.UpdatedAt = rec.Time
	var s *Step
	if rec.Step != "" {
		if s, ok = r.Step(rec.Step); !ok {
			return fmt.Errorf("run %q has no step %q", rec.Run, rec.Step)
		}
	}
	needStep := func() error {
		if s == nil {
			return fmt.Errorf("%s record without a step", rec.Type)
		}
		return nil
	}
	switch rec.Type {
	case EventRunResumed:
		r.Status = RunRunning
		r.Cause, r.Error = "", ""
	case EventStepStarted:
		if err := needStep(); err != nil {
			return err
		}
		s.Status, s.Attempt, s.StartedAt = StepRunning, rec.Attempt, rec.Time
		s.EndedAt, s.DurationMS, s.Cause, s.Error = time.Time{}, 0, "", ""
		if rec.Plugin != "" {
			s.Plugin = rec.Plugin
		}
	case EventStepCompleted, EventStepMarkedDone:
		if err := needStep(); err != nil {
			return err
		}
		s.Status, s.EndedAt, s.DurationMS = StepCompleted, rec.Time, rec.DurationMS
		s.Output, s.OutputSize = rec.Output, len(rec.Output)
		s.MarkedDone = rec.Type == EventStepMarkedDone
		s.Cause, s.Error = "", ""
		if rec.Attempt > 0 {
			s.Attempt = rec.Attempt
		}
		if len(rec.Context) > 0 {
			if r.Context == nil {
				r.Context = make(map[string]json.RawMessage, len(rec.Context))
			}
			for k, v := range rec.Context {
				if string(v) == "null" {
					delete(r.Context, k)
					continue
				}
				r.Context[k] = v
			}
		}
	case EventStepFailed:
		if err := needStep(); err != nil {
			return err
		}
		s.Status, s.EndedAt, s.DurationMS = StepFailed, rec.Time, rec.DurationMS
		s.Cause, s.Error = rec.Cause, rec.Error
	case EventPluginUpgraded:
		if err := needStep(); err != nil {
			return err
		}
		s.Plugin = rec.Plugin
	case EventRunCompleted:
		r.Status = RunCompleted
	case EventRunFailed:
		r.Status, r.Cause, r.Error = RunFailed, rec.Cause, rec.Error
	default:
		return fmt.Errorf("unknown record type %q", rec.Type)
	}
	return nil
}
