package runtime

// Records and events: the one path by which the engine journals what
// happened and then tells of it.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/12fa/12fa/progress"
	"github.com/12fa/12fa/state"
)

// commit makes recs durable in the journal, then emits evs: no event (in
// progress.jsonl, to OnEvent) tells of what the journal could still lose.
// Pass context.WithoutCancel(ctx) for records of what has happened already
// (a step that acted), so that a canceled caller does not leave it untold.
func (r *Runtime) commit(ctx context.Context, recs []*state.Record, evs ...Event) error {
	return r.journal(ctx, r.store.Append, recs, evs)
}

// commitLazy is commit for records the disk may lose to a power cut
// without harm (an idempotent step's start: it simply runs again): it
// waits for the write, not the fsync.
func (r *Runtime) commitLazy(ctx context.Context, recs []*state.Record, evs ...Event) error {
	return r.journal(ctx, r.store.AppendLazy, recs, evs)
}

func (r *Runtime) journal(ctx context.Context, add func(context.Context, ...*state.Record) error, recs []*state.Record, evs []Event) error {
	if err := add(ctx, recs...); err != nil {
		return err
	}
	for _, e := range evs {
		r.emit(e)
	}
	return nil
}

// emit records an event in progress.jsonl and hands it to Config.OnEvent.
func (r *Runtime) emit(e Event) {
	e.Time = r.cfg.Now()
	if err := r.progress.Add(progressEntry(e)); err != nil {
		r.log.Warn("progress log", "error", err)
	}
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(e)
	}
}

// progressEntry turns an event into a progress.jsonl line.
func progressEntry(e Event) progress.Entry {
	p := progress.Entry{Time: e.Time.UTC(), Session: e.Run, Step: e.Step, Action: string(e.Type),
		DurationMS: ms(e.Duration)}
	switch e.Type {
	case EventRunStarted, EventRunResumed, EventRunCompleted, EventRunFailed, EventRunRolledBack, EventPluginsLoaded:
		p.Phase = "run"
	case EventRollbackStarted, EventRollbackCompleted, EventRollbackFailed:
		p.Phase = "rollback"
	case EventStepLog:
		p.Phase, p.Action, p.Details = "log", e.Log.Source+"."+e.Log.Level.String(), e.Log.Message
	case EventHostCall:
		p.Phase, p.Action, p.Details = "call", e.Call.Kind, e.Call.String()
	default:
		p.Phase = "step"
	}
	switch e.Type {
	case EventStepCompleted, EventStepReplayed, EventStepMarkedDone, EventRunCompleted, EventRollbackCompleted, EventRunRolledBack:
		p.Result = "ok"
	case EventStepFailed, EventRunFailed, EventRollbackFailed:
		p.Result = "failed"
	case EventStepWaiting:
		p.Result = "waiting"
		for _, q := range e.Questions {
			p.Details += q.ID + ": " + q.Question + "; "
		}
	}
	if e.Err != nil {
		p.Details = e.Err.Error()
		if e.RetryIn > 0 {
			p.Details += fmt.Sprintf("; retrying in %s", e.RetryIn.Round(time.Millisecond))
		}
	}
	if e.Attempt > 0 && p.Phase != "log" {
		p.Details = strings.TrimSpace(fmt.Sprintf("attempt %d %s", e.Attempt, p.Details))
	}
	return p
}

// ProgressPath is where a project's progress log is.
func ProgressPath(projectDir string) string {
	return filepath.Join(StoreDir(projectDir), progress.FileName)
}
