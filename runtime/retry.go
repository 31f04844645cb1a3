package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/state"
)

// The one retry loop: a step's attempts and a step's rollback's attempts
// are each a series under the step's retry policy. Before a series waits
// for its next attempt, the schedule is journaled (step_retry or
// rollback_retry) with the failure, so that a crash during the wait
// resumes the schedule, with the attempts the series had left, instead of
// starting over.

// series is one run of attempts.
type series struct {
	// kind is the record that journals the schedule.
	kind state.EventType
	// first is the series' first attempt, attempt the one about to run,
	// left the attempts the series allows, that one included.
	first, attempt, left int
	// start is when the series began; total bounds it (0: no bound).
	start time.Time
	total time.Duration
}

// beginSeries starts the series of step i at attempt, or takes up the one a
// crash or a stop interrupted: when a schedule was journaled (nextAt set,
// with left attempts), it waits for it first.
func (x *execution) beginSeries(ctx context.Context, i int, kind state.EventType, attempt int, nextAt, start time.Time, left int) (*series, error) {
	s := x.steps[i].step
	sr := &series{kind: kind, first: attempt, attempt: attempt, left: s.Retry.MaxAttempts, start: x.rt.cfg.Now()}
	if kind == state.EventStepRetry {
		sr.total = time.Duration(s.TotalTimeout)
	}
	if !nextAt.IsZero() && left > 0 {
		sr.start, sr.left = start, left
		if err := x.sleepUntil(ctx, i, attempt, nextAt); err != nil {
			return nil, err
		}
	}
	return sr, nil
}

// remaining is what total leaves of the series now (ok false: spent); with
// no bound, max.
func (sr *series) remaining(now time.Time, max time.Duration) (time.Duration, bool) {
	if sr.total <= 0 {
		return max, true
	}
	left := sr.total - now.Sub(sr.start)
	return min(max, left), left > 0
}

// schedule is called when the series' attempt failed with f; may says
// whether the failure and the step allow another attempt. It returns the
// record that schedules the next attempt, to be journaled with the
// failure, or nil when the series is over (f's error then says why, when
// it is the total bound).
func (x *execution) schedule(i int, sr *series, may bool, f *failure) *state.Record {
	s := x.steps[i].step
	sr.left--
	if sr.left <= 0 || !may {
		return nil
	}
	now := x.rt.cfg.Now()
	delay := jitter(s.Retry.Delay(sr.attempt-sr.first+1), s.Retry.Jitter)
	if sr.total > 0 && now.Add(delay).Sub(sr.start) > sr.total {
		f.err = fmt.Errorf("%w; total_timeout %s leaves no time for attempt %d", f.err, sr.total, sr.attempt+1)
		return nil
	}
	return &state.Record{Type: sr.kind, Run: x.runID, Step: s.ID, Attempt: sr.attempt + 1,
		NotBefore: now.Add(delay), SeriesStart: sr.start, Remaining: sr.left}
}

// retryAfter waits for the schedule next (journaled) and moves the series
// on to its attempt.
func (x *execution) retryAfter(ctx context.Context, i int, sr *series, next *state.Record) error {
	if err := x.sleepUntil(ctx, i, next.Attempt, next.NotBefore); err != nil {
		return err
	}
	sr.attempt = next.Attempt
	return nil
}

// sleepUntil waits for a scheduled attempt, or for ctx.
func (x *execution) sleepUntil(ctx context.Context, i, attempt int, t time.Time) error {
	d := t.Sub(x.rt.cfg.Now())
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return &StepError{Step: x.steps[i].step.ID, Attempt: attempt, Cause: abi.CauseCanceled,
			Err: fmt.Errorf("%w while waiting to retry: %w", ErrCanceled, ctx.Err())}
	}
}

// causeOf is the cause a failed call is journaled as: the host's, except
// that a step failing with the code a host call gave it (an HostError's,
// returned as its own error) fails with that cause.
func causeOf(err error) abi.Cause {
	c := host.CauseOf(err)
	if ce, ok := errors.AsType[*host.CallError](err); ok && c == abi.CausePluginError && ce.Guest != nil && ce.Guest.Retryable == nil {
		if gc := abi.Cause(ce.Guest.Code); gc.HostCall() {
			return gc
		}
	}
	return c
}

// retryable says whether a failure may go away on another attempt. Traps,
// timeouts and memory limits may; a plugin's own error may unless it says
// otherwise or its code is listed in non_retryable; a bad host call, an
// output too large and anything about the plugin itself never do.
func retryable(f *failure, s *manifest.Step) bool {
	switch f.cause {
	case abi.CauseTimeout, abi.CauseTrap, abi.CauseMemoryLimit, abi.CauseInstantiate,
		abi.CauseHTTPTimeout, abi.CauseHTTPNetwork, abi.CauseExecTimeout:
		return true
	case abi.CausePluginError:
		var ce *host.CallError
		if errors.As(f.err, &ce) && ce.Guest != nil {
			if ce.Guest.Retryable != nil {
				return *ce.Guest.Retryable
			}
			if ce.Guest.Code != "" && slices.Contains(s.NonRetryable, ce.Guest.Code) {
				return false
			}

		}
		return true
	}
	return false
}

// jitter moves d by up to ±frac of itself.
func jitter(d time.Duration, frac float64) time.Duration {
	if frac <= 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + frac*(2*rand.Float64()-1)))
}
