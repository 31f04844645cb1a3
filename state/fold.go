package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The fold: how records become runs. It is the one definition of what a
// journal means, shared by every store (a store validates a batch with
// validate before writing it and folds it with apply after).

// validate checks a batch of records against runs before any of it is
// written, so that apply cannot fail on what reached the disk. It does not
// change runs. An error means the caller is not using the journal as 12fa
// does.
func validate(runs map[string]*Run, recs []*Record) error {
	started := map[string]*Record{}
	states := map[string]*Run{}
	for _, rec := range recs {
		if rec.Type == EventJournalBase {
			continue
		}
		if rec.Run == "" {
			return fmt.Errorf("%s record without a run", rec.Type)
		}
		if rec.Type == EventRunState {
			if rec.State == nil || rec.State.ID != rec.Run {
				return fmt.Errorf("run_state record of run %q without its state", rec.Run)
			}
			states[rec.Run] = rec.State
			continue
		}
		if rec.Type == EventStepState && (rec.StepState == nil || rec.StepState.ID != rec.Step) {
			return fmt.Errorf("step_state record of run %q step %q without its state", rec.Run, rec.Step)
		}
		if rec.Type == EventRunStarted {
			if err := ValidRunID(rec.Run); err != nil {
				return err
			}
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
			if r, ok := states[rec.Run]; ok {
				return slices.ContainsFunc(r.Steps, func(s Step) bool { return s.ID == id })
			}
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
		if _, ok := runs[rec.Run]; !ok && started[rec.Run] == nil && states[rec.Run] == nil {
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
	EventRollbackFailed: true, EventRollbackRetry: true, EventRunRolledBack: true, EventRunRollbackFailed: true,
	EventStepWaiting: true, EventRunWaiting: true, EventRunRestored: true,
	EventHostCallStarted: true, EventHostCall: true, EventStepState: true,
}

// internalEvents are the records only a store writes.
var internalEvents = map[EventType]bool{EventJournalBase: true, EventRunState: true, EventStepState: true}

// stateRecords are the records that carry r's whole state: a run_state
// record with the steps' outputs, context writes and calls left out, then
// a step_state record for each step that has any, so that no record holds
// more than the run's context or one step's worth.
func stateRecords(r *Run, seq uint64, now time.Time) []*Record {
	lean := r.Clone()
	recs := []*Record{{Seq: seq, Time: now, Type: EventRunState, Run: r.ID, State: &lean}}
	for i := range lean.Steps {
		s := &lean.Steps[i]
		if s.Output == nil && s.ContextWrites == nil && s.Calls == nil {
			continue
		}
		full := *s
		recs = append(recs, &Record{Seq: seq, Time: now, Type: EventStepState, Run: r.ID, Step: s.ID, StepState: &full})
		s.Output, s.ContextWrites, s.Calls = nil, nil, nil
	}
	return recs
}

// ValidRunID checks that id can name a run: 1 to 128 letters, digits, '.',
// '_' or '-', not starting with '.' or '-' (it names the run's file).
func ValidRunID(id string) error {
	ok := id != "" && len(id) <= 128 && id[0] != '.' && id[0] != '-'
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("bad run id %q: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'", id)
	}
	return nil
}

var stepEvents = map[EventType]bool{
	EventStepStarted: true, EventStepCompleted: true, EventStepFailed: true,
	EventStepMarkedDone: true, EventPluginUpgraded: true, EventStepRetry: true,
	EventRollbackStarted: true, EventRollbackCompleted: true, EventRollbackFailed: true, EventRollbackRetry: true,
	EventStepWaiting: true, EventHostCallStarted: true, EventHostCall: true, EventStepState: true,
}

// apply folds one record into runs. Records read back from a journal are
// validated first, so an error here means the file was not written by 12fa.
func apply(runs map[string]*Run, rec *Record) error {
	if err := validate(runs, []*Record{rec}); err != nil {
		return err
	}
	switch rec.Type {
	case EventJournalBase:
		return nil
	case EventRunState:
		r := rec.State.Clone()
		r.reindex()
		r.seq = rec.Seq
		runs[rec.Run] = &r
		return nil
	case EventStepState:
		r := runs[rec.Run]
		r.Steps[r.index[rec.Step]] = *rec.StepState
		r.seq, r.counted = rec.Seq, false
		return nil
	}
	if rec.Type == EventRunStarted {
		r := &Run{
			ID: rec.Run, Workflow: rec.Workflow, Manifest: rec.Manifest,
			Status: RunRunning, CreatedAt: rec.Time, UpdatedAt: rec.Time,
			Steps: make([]Step, len(rec.Steps)), index: make(map[string]int, len(rec.Steps)), counted: true,
		}
		for i, d := range rec.Steps {
			r.Steps[i] = Step{ID: d.ID, Plugin: d.Plugin, Status: StepPending}
			r.index[d.ID] = i
		}
		r.seq = rec.Seq
		runs[rec.Run] = r
		return nil
	}
	r := runs[rec.Run]
	r.UpdatedAt, r.seq = rec.Time, rec.Seq
	var s *Step
	var wasDone bool
	if rec.Step != "" {
		s, _ = r.Step(rec.Step)
		wasDone = s != nil && s.Status == StepCompleted
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
		r.counted = false
	case EventRunRollingBack:
		r.Status, r.Cause, r.Error = RunRollingBack, rec.Cause, rec.Error
	case EventRollbackStarted:
		s.Rollback, s.RollbackAttempt, s.RollbackError = RollbackRunning, rec.Attempt, ""
		s.RollbackNextAt, s.RollbackAttemptsLeft = time.Time{}, 0
	case EventRollbackCompleted:
		s.Rollback = RollbackCompleted
	case EventRollbackFailed:
		s.Rollback, s.RollbackError = RollbackFailed, rec.Error
	case EventRollbackRetry:
		s.RollbackNextAt, s.RollbackSeriesStart, s.RollbackAttemptsLeft = rec.NotBefore, rec.SeriesStart, rec.Remaining
	case EventRunRolledBack:
		r.Status = RunRolledBack
	case EventRunRollbackFailed:
		r.Status, r.Cause, r.Error = RunRollbackFailed, rec.Cause, rec.Error
	}
	if s != nil && r.counted {
		switch isDone := s.Status == StepCompleted; {
		case isDone && !wasDone:
			r.done++
		case wasDone && !isDone:
			r.done--
		}
	}
	return nil
}

// Validate checks a batch of records against runs (by id) before any of it
// is written, as every store must: it changes nothing, and an error means
// the batch is refused whole. Apply folds one validated record into runs.
// Together they are the one definition of what a journal means; a store
// other than FileStore keeps the runs it folds in a map of its own.
func Validate(runs map[string]*Run, recs []*Record) error { return validate(runs, recs) }

// Apply folds rec into runs (see Validate).
func Apply(runs map[string]*Run, rec *Record) error { return apply(runs, rec) }

// Internal reports whether records of type t are a store's own (journal
// bases and carried states), which Append refuses from callers.
func Internal(t EventType) bool { return internalEvents[t] }
