package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/state"
)

// rollback undoes the run (saga): the rollback of the step that failed or
// was interrupted, then those of the completed steps in reverse order; steps
// without a rollback export are passed over. Each rollback is journaled like
// a step and retried per its step's policy; a rollback already completed is
// not run again when a resumed process continues. cause is the error that
// started it (nil when continuing or asked for by hand).
func (x *execution) rollback(ctx context.Context, cause error) error {
	run, err := x.rt.lookup(x.runID)
	if err != nil {
		return err
	}
	var order []int
	for i := len(run.Steps) - 1; i >= 0; i-- {
		if st := run.Steps[i].Status; st == state.StepFailed || st == state.StepRunning {
			order = append(order, i)
		}
	}
	for i := len(run.Steps) - 1; i >= 0; i-- {
		if run.Steps[i].Status == state.StepCompleted {
			order = append(order, i)
		}
	}
	for _, i := range order {
		rs := run.Steps[i]
		if x.steps[i].step.Rollback == "" || rs.Rollback == state.RollbackCompleted {
			continue
		}
		if err := x.rollbackStep(ctx, i, rs); err != nil {
			var se *StepError
			if errors.As(err, &se) && se.Cause == abi.CauseCanceled {
				return err // the rollback stays in progress; resume continues it
			}
			rec := &state.Record{Type: state.EventRunRollbackFailed, Run: x.runID, Step: x.steps[i].step.ID, Cause: abi.CauseRollback, Error: err.Error()}
			if jerr := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{rec},
				Event{Type: EventRunFailed, Run: x.runID, Workflow: x.m.Workflow.Name, Err: err}); jerr != nil {
				return errors.Join(err, jerr)
			}
			return errors.Join(cause, err)
		}
	}
	if err := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{{Type: state.EventRunRolledBack, Run: x.runID}},
		Event{Type: EventRunRolledBack, Run: x.runID, Workflow: x.m.Workflow.Name, Err: cause}); err != nil {
		return errors.Join(cause, fmt.Errorf("journal end of rollback: %w", err))
	}
	if cause == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrRolledBack, cause)
}

// rollbackStep calls step i's rollback export until it succeeds or its
// series (the step's retry policy, see series) is spent. A rollback must be
// safe to run twice: it is run again after a crash inside it, whatever the
// step's idempotency.
func (x *execution) rollbackStep(ctx context.Context, i int, rs state.Step) error {
	l := &x.steps[i]
	s := l.step
	sr, err := x.beginSeries(ctx, i, state.EventRollbackRetry, rs.RollbackAttempt+1, rs.RollbackNextAt, rs.RollbackSeriesStart, rs.RollbackAttemptsLeft)
	if err != nil {
		return err
	}
	for {
		attempt := sr.attempt
		started := &state.Record{Type: state.EventRollbackStarted, Run: x.runID, Step: s.ID, Attempt: attempt}
		if err := x.rt.commit(ctx, []*state.Record{started}, Event{Type: EventRollbackStarted, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt}); err != nil {
			return fmt.Errorf("journal start of rollback of %q: %w", s.ID, err)
		}
		res, err := l.plugin.Call(ctx, x.request(i, attempt, s.Rollback))
		var dur time.Duration
		if res != nil {
			dur = res.Duration
		}
		if err == nil {
			done := &state.Record{Type: state.EventRollbackCompleted, Run: x.runID, Step: s.ID, Attempt: attempt, DurationMS: ms(dur)}
			if err := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{done},
				Event{Type: EventRollbackCompleted, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt, Duration: dur}); err != nil {
				return fmt.Errorf("journal rollback of %q: %w", s.ID, err)
			}
			return nil
		}
		if errors.Is(err, host.ErrCanceled) {
			return &StepError{Step: s.ID, Attempt: attempt, Cause: abi.CauseCanceled, Err: fmt.Errorf("%w: %w", ErrCanceled, ctx.Err())}
		}
		f := &failure{cause: causeOf(err), err: err, dur: dur}
		next := x.schedule(i, sr, retryable(f, s), f)
		recs := []*state.Record{{Type: state.EventRollbackFailed, Run: x.runID, Step: s.ID, Attempt: attempt,
			Cause: f.cause, Error: err.Error(), DurationMS: ms(dur)}}
		var delay time.Duration
		if next != nil {
			recs = append(recs, next)
			delay = next.NotBefore.Sub(x.rt.cfg.Now())
		}
		if jerr := x.rt.commit(context.WithoutCancel(ctx), recs,
			Event{Type: EventRollbackFailed, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt, Duration: dur, Err: err, RetryIn: delay}); jerr != nil {
			return errors.Join(err, jerr)
		}
		if next == nil {
			return &StepError{Step: s.ID, Attempt: attempt, Cause: f.cause, Err: fmt.Errorf("%w: %w", ErrRollbackFailed, err)}
		}
		if err := x.retryAfter(ctx, i, sr, next); err != nil {
			return err
		}
	}
}

// rollsBack reports whether a failure of s for good rolls the run back.
func rollsBack(s *manifest.Step) bool { return s.OnFailure == manifest.OnFailureRollback }
