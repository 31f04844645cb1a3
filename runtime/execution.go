package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/jsrunner"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/notify"
	"github.com/12fa/12fa/state"
)

// execution is one call of Run: it walks the steps of one run.
type execution struct {
	rt      *Runtime
	m       *manifest.Manifest
	steps   []loaded
	opts    RunOptions
	act     action // what decide said to do with the run
	runID   string
	context contextMap
	// contextBytes is what context counts toward abi.MaxContextBytes,
	// kept up to date as steps write, so that no attempt recounts it.
	contextBytes int
	res          *Result
	// outputs holds the output of every completed step, encoded for the
	// envelopes of the steps after it.
	outputs abi.Outputs
	// answers holds the answers to the manifest's [[input]] questions, as
	// the envelope's "inputs" object (nil when there are none).
	answers json.RawMessage
	// notifier is where the run's notifications go (nil: off); notified
	// counts the plugins' own, for the per-run limit.
	notifier Notifier
	notified atomic.Int32
	// lastCommit is the run's latest checkpoint commit, the parent of the
	// next.
	lastCommit string
}

// maxPluginNotificationsPerRun bounds what a run's plugins may send.
const maxPluginNotificationsPerRun = 20

// announce sends one of the runner's own notifications, if they are on. It
// never waits and never fails the run.
func (x *execution) announce(ctx context.Context, n abi.Notification) {
	if x.notifier == nil {
		return
	}
	if err := x.notifier.Notify(context.WithoutCancel(ctx), n); err != nil {
		x.rt.log.Warn("notification not sent", "title", n.Title, "error", err)
	}
}

// announceEnd tells how the run stopped: completed, waiting for answers
// (one notification for all its questions), paused, failed or rolled back.
func (x *execution) announceEnd(ctx context.Context, res *Result) {
	if res == nil || x.notifier == nil {
		return
	}
	run, err := x.rt.store.Run(x.runID)
	if err != nil {
		return
	}
	wf := x.m.Workflow.Name
	switch run.Status {
	case state.RunCompleted:
		if res.Ran > 0 || res.MarkedDone > 0 {
			x.announce(ctx, abi.Notification{Title: "Run completed: " + wf, Priority: 3, Tags: []string{"white_check_mark"},
				Message: fmt.Sprintf("run %s: %d steps ran, %d replayed", run.ID, res.Ran, res.Replayed)})
		}
	case state.RunWaiting:
		ids := append([]string(nil), run.Pending...)
		for _, s := range run.Steps {
			ids = append(ids, s.Pending...)
		}
		qs, _ := x.rt.inputs.Get(ids)
		var b strings.Builder
		fmt.Fprintf(&b, "run %s waits for %d answer(s):\n", run.ID, len(qs))
		for _, q := range qs {
			fmt.Fprintf(&b, "- %s", q.Question)
			if len(q.Options) > 0 {
				fmt.Fprintf(&b, " [%s]", strings.Join(q.Options, "/"))
			}
			fmt.Fprintf(&b, " (12fa respond %s <answer>)\n", q.ID)
		}
		b.WriteString("then: 12fa resume " + run.ID)
		n := abi.Notification{Title: "Input required: " + wf, Priority: 4, Tags: []string{"question"}, Message: b.String()}
		if links := x.rt.cfg.AnswerLinks; links != nil {
			nq := make([]notify.Question, len(qs))
			for i, q := range qs {
				nq[i] = notify.Question{ID: q.ID, Options: q.Options, Expires: q.ExpiresAt}
			}
			n.Actions = links.Actions(nq, x.rt.cfg.Now())
		}
		x.announce(ctx, n)
	case state.RunPaused, state.RunFailed, state.RunRolledBack, state.RunRollbackFailed:
		x.announce(ctx, abi.Notification{Title: fmt.Sprintf("Run %s: %s", run.Status, wf), Priority: 4, Tags: []string{"warning"},
			Message: fmt.Sprintf("run %s stopped (%s): %s", run.ID, run.Cause, firstLine(run.Error))})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// runNotifier is the notifier a step's calls get: the run's, with the
// per-run limit.
type runNotifier struct{ x *execution }

func (rn runNotifier) Notify(ctx context.Context, n abi.Notification) error {
	if rn.x.notified.Add(1) > maxPluginNotificationsPerRun {
		return host.ErrLimited
	}
	return rn.x.notifier.Notify(ctx, n)
}

func (x *execution) run(ctx context.Context, run *state.Run) (*Result, error) {
	if x.context == nil {
		x.context = contextMap{}
	}
	x.contextBytes = x.context.bytes()
	if x.act == actRollback || x.act == actContinueRollback {
		// A rollback asked for, or under way: finish it, never go forward.
		for i, rs := range run.Steps {
			if rs.Status == state.StepCompleted {
				x.outputs.Add(x.steps[i].step.ID, rs.Output)
			}
		}
		if x.act == actRollback {
			rec := &state.Record{Type: state.EventRunRollingBack, Run: x.runID, Cause: abi.CauseRequested, Error: "rollback asked for by hand"}
			if err := x.rt.commit(ctx, []*state.Record{rec}); err != nil {
				return x.res, fmt.Errorf("start rollback of run %s: %w", x.runID, err)
			}
		}
		err := x.rollback(ctx, nil)
		x.finish(run.ID)
		return x.res, err
	}
	if err := x.askUpfront(ctx); err != nil {
		x.finish(run.ID)
		return x.res, err
	}
	for i := range x.steps {
		rs := run.Steps[i]
		if err := x.step(ctx, i, rs); err != nil {
			x.finish(run.ID)
			return x.res, err
		}
	}
	if run.Status != state.RunCompleted {
		if err := x.rt.commit(ctx, []*state.Record{{Type: state.EventRunCompleted, Run: x.runID}},
			Event{Type: EventRunCompleted, Run: x.runID, Workflow: x.m.Workflow.Name, Steps: len(x.steps)}); err != nil {
			return x.res, fmt.Errorf("complete run %s: %w", x.runID, err)
		}
	}
	x.finish(run.ID)
	return x.res, nil
}

// finish fills the result from the store and, when no other run of this
// process is still going, writes the snapshot: a run boundary. (With many
// runs at once, the last to finish writes it once for all; Close writes it
// in any case.)
func (x *execution) finish(runID string) {
	if run, err := x.rt.store.Run(runID); err == nil {
		x.res.Status, x.res.Steps = run.Status, run.Steps
	}
	if x.rt.store.Claimed() > 1 {
		return
	}
	if err := x.rt.store.WriteSnapshot(); err != nil {
		x.rt.log.Warn("write snapshot", "error", err)
	}
}

// step brings step i to completion, or returns why it could not.
func (x *execution) step(ctx context.Context, i int, rs state.Step) error {
	l := &x.steps[i]
	id := l.step.ID
	switch rs.Status {
	case state.StepCompleted:
		x.res.Replayed++
		x.outputs.Add(id, rs.Output)
		x.rt.emit(Event{Type: EventStepReplayed, Run: x.runID, Step: id, Index: i, Attempt: rs.Attempt, Output: rs.Output})
		return nil
	case state.StepRunning:
		// Started in a process that died before the attempt ended.
		decision := ""
		switch {
		case l.step.Idempotent || x.opts.RerunInterrupted:
			decision = "rerun"
		case x.opts.MarkDone:
			decision = "mark-done"
		default:
			// Ask a person (the flags answer for them).
			req := abi.InputRequest{Key: fmt.Sprintf("interrupted-attempt-%d", rs.Attempt), Options: []string{"rerun", "mark-done", "abort"},
				Question: fmt.Sprintf("Step %q was interrupted in attempt %d (started %s) and is not idempotent: its effect may or may not have happened. Run it again, mark it done, or abort the run?",
					id, rs.Attempt, rs.StartedAt.Format(time.RFC3339))}
			resp, err := x.rt.inputs.Ask(x.runID, id, req)
			if err != nil {
				return fmt.Errorf("ask about interrupted step %q: %w", id, err)
			}
			if !resp.Answered {
				return x.waitInterrupted(ctx, i, rs, resp.ID)
			}
			decision = resp.Answer
		}
		if !l.step.Idempotent && (x.opts.RerunInterrupted || x.opts.MarkDone) {
			// Decided without the question asked by an earlier process,
			// which no longer matters.
			x.supersede(id, nil)
		}
		switch decision {
		case "mark-done":
			rec := &state.Record{Type: state.EventStepMarkedDone, Run: x.runID, Step: id, Attempt: rs.Attempt, Output: json.RawMessage("null")}
			if err := x.rt.commit(ctx, []*state.Record{rec},
				Event{Type: EventStepMarkedDone, Run: x.runID, Step: id, Index: i, Attempt: rs.Attempt, Output: rec.Output}); err != nil {
				return fmt.Errorf("mark step %q done: %w", id, err)
			}
			x.res.MarkedDone++
			x.outputs.Add(id, rec.Output)
			return nil
		case "abort":
			err := fmt.Errorf("%w: aborted by a person after attempt %d was interrupted", ErrInterrupted, rs.Attempt)
			recs := []*state.Record{
				{Type: state.EventStepFailed, Run: x.runID, Step: id, Attempt: rs.Attempt, Cause: abi.CauseAborted, Error: err.Error()},
				{Type: state.EventRunFailed, Run: x.runID, Step: id, Cause: abi.CauseAborted, Error: err.Error()},
			}
			if jerr := x.rt.commit(context.WithoutCancel(ctx), recs); jerr != nil {
				return errors.Join(err, jerr)
			}
			return &StepError{Step: id, Attempt: rs.Attempt, Cause: abi.CauseAborted, Err: fmt.Errorf("%w: %w", ErrRunFailed, err)}
		}
	}
	// Pending, interrupted and to run again, or failed in a run that was
	// paused, retried by hand, or has a retry scheduled.
	return x.attempts(ctx, i, rs)
}

// failure is an attempt that did not complete, not yet journaled: a
// failure, or (waiting set) a step that asked questions nobody answered.
type failure struct {
	cause   abi.Cause
	err     error
	dur     time.Duration
	waiting []string
}

// attempts runs attempts of step i until one succeeds or its series is
// spent, journaling each (see series).
func (x *execution) attempts(ctx context.Context, i int, rs state.Step) error {
	s := x.steps[i].step
	sr, err := x.beginSeries(ctx, i, state.EventStepRetry, rs.Attempt+1, rs.NextAttemptAt, rs.SeriesStart, rs.AttemptsLeft)
	if err != nil {
		return err
	}
	for {
		// An attempt runs for its timeout, or what total_timeout leaves of
		// the series, whichever is shorter.
		timeout, ok := sr.remaining(x.rt.cfg.Now(), time.Duration(s.Timeout))
		if !ok {
			f := &failure{cause: abi.CauseTimeout, err: fmt.Errorf("total_timeout %s spent before attempt %d", time.Duration(s.TotalTimeout), sr.attempt)}
			failed := &state.Record{Type: state.EventStepFailed, Run: x.runID, Step: s.ID, Attempt: sr.attempt, Cause: f.cause, Error: f.err.Error()}
			return x.failedForGood(ctx, i, sr.attempt, f, failed)
		}
		f, err := x.attempt(ctx, i, sr.attempt, timeout)
		if err == nil && len(rs.Pending) > 0 {
			// The attempt that asked them was followed by this one: what it
			// did not ask again (its plugin changed, say) is superseded.
			var keep []string
			if f != nil {
				keep = f.waiting
			}
			x.supersede(s.ID, keep)
			rs.Pending = nil
		}
		if err != nil || f == nil {
			return err
		}
		if f.waiting != nil {
			return x.wait(ctx, i, sr.attempt, f)
		}
		next := x.schedule(i, sr, retryable(f, s) && (s.Idempotent || s.Retry.NonIdempotent), f)
		failed := &state.Record{Type: state.EventStepFailed, Run: x.runID, Step: s.ID, Attempt: sr.attempt,
			Cause: f.cause, Error: f.err.Error(), DurationMS: ms(f.dur)}
		if next == nil {
			return x.failedForGood(ctx, i, sr.attempt, f, failed)
		}
		if err := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{failed, next},
			Event{Type: EventStepFailed, Run: x.runID, Step: s.ID, Index: i, Attempt: sr.attempt, Duration: f.dur, Err: f.err,
				RetryIn: next.NotBefore.Sub(x.rt.cfg.Now())}); err != nil {
			return fmt.Errorf("journal failure of step %q: %w", s.ID, err)
		}
		if err := x.retryAfter(ctx, i, sr, next); err != nil {
			return err
		}
	}
}

// input is what a step's attempt gets as its Extism input: the envelope,
// or, with input_mode = "raw", the step's own input.
func (x *execution) input(l *loaded, attempt int) []byte {
	if l.step.InputMode == manifest.InputRaw {
		return l.step.RawInput()
	}
	return x.envelope(l, attempt)
}

// envelope encodes the call envelope of a step's attempt.
func (x *execution) envelope(l *loaded, attempt int) []byte {
	var only []string
	if l.step.Needs != nil {
		if only = *l.step.Needs; only == nil {
			only = []string{} // needs = []: no outputs, not all
		}
	}
	env := abi.Envelope{Workflow: x.m.Workflow.Name, RunID: x.runID, Step: l.step.ID, Attempt: attempt, Input: l.step.InputJSON}
	members := x.outputs.Members(only)
	return abi.AppendEnvelope(make([]byte, 0, len(members)+len(l.step.InputJSON)+len(x.answers)+192), &env, members, x.answers)
}

// attempt runs one attempt of step i and journals its start and, on
// success, its completion. A failed attempt comes back as a *failure for
// the caller to journal with what follows it.
func (x *execution) attempt(ctx context.Context, i, attempt int, timeout time.Duration) (*failure, error) {
	l := &x.steps[i]
	s := l.step
	started := &state.Record{Type: state.EventStepStarted, Run: x.runID, Step: s.ID, Attempt: attempt, Plugin: l.sha}
	// A non-idempotent step's start must be on disk before it can act, so
	// that a crash inside it is seen on resume. An idempotent step that loses
	// its start record to a power cut is simply run again.
	commit := x.rt.commit
	if s.Idempotent {
		commit = x.rt.commitLazy
	}
	if err := commit(ctx, []*state.Record{started}, Event{Type: EventStepStarted, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt}); err != nil {
		return nil, fmt.Errorf("journal start of step %q: %w", s.ID, err)
	}

	req := x.request(i, attempt, s.Function)
	req.Timeout = timeout
	var calls *callJournal
	if req.HTTP != nil || l.exec != nil {
		calls = x.calls(i, attempt, req.HTTP, l.exec)
		if req.HTTP != nil {
			req.HTTP = calls
		}
		if l.exec != nil {
			req.Exec = calls
		}
	}
	req.Inputs = stepInputs{store: x.rt.inputs, run: x.runID, step: s.ID}
	if x.notifier != nil {
		req.Notifier = runNotifier{x}
	}
	if len(l.missing) > 0 {
		return &failure{cause: abi.CauseSecretMissing, err: fmt.Errorf("the step is granted secrets the host's environment does not hold: %s; set them and resume",
			strings.Join(l.missing, ", "))}, nil
	}
	if len(req.Input) > abi.MaxInputBytes {
		return &failure{cause: abi.CauseInputTooLarge, err: fmt.Errorf("the input is %d bytes, the limit is %d (declare needs = [...] to pass fewer outputs)",
			len(req.Input), abi.MaxInputBytes)}, nil
	}
	res, err := l.plugin.Call(ctx, req)
	var dur time.Duration
	if res != nil {
		dur = res.Duration
		if len(res.Pending) > 0 && (err == nil || errors.Is(err, host.ErrPluginFailed)) {
			// It asked what nobody answered yet: whatever it returned, the
			// step waits and runs again once they are answered.
			if calls != nil {
				calls.keep(ctx)
			}
			return &failure{cause: abi.CauseWaiting, err: ErrWaiting, dur: dur, waiting: res.Pending}, nil
		}
	}
	if err != nil {
		if errors.Is(err, host.ErrCanceled) {
			// Not the step's fault: leave it started, so resume handles it like
			// a crash.
			if calls != nil {
				calls.keep(ctx)
			}
			return nil, &StepError{Step: s.ID, Attempt: attempt, Cause: abi.CauseCanceled, Err: fmt.Errorf("%w: %w", ErrCanceled, ctx.Err())}
		}
		return &failure{cause: causeOf(err), err: err, dur: dur}, nil
	}
	out, binary := normalizeOutput(res.Output)
	if len(out) > int(s.MaxOutput) {
		// The limit holds for what is recorded and what later steps get.
		return &failure{cause: abi.CauseOutputTooLarge, dur: dur, err: fmt.Errorf("%w: %d bytes as recorded (JSON), the limit is %d",
			host.ErrOutputTooLarge, len(out), s.MaxOutput)}, nil
	}
	done := &state.Record{Type: state.EventStepCompleted, Run: x.runID, Step: s.ID, Attempt: attempt,
		Output: out, OutputBinary: binary, Context: res.ContextWrites, DurationMS: ms(dur)}
	// The step has acted: record it even if the caller gave up meanwhile.
	// (Its checkpoint, which follows, is best effort and never holds the
	// event back.)
	if err := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{done},
		Event{Type: EventStepCompleted, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt, Output: out, Duration: dur}); err != nil {
		if errors.Is(err, state.ErrRecordTooLarge) {
			// Refused before anything was written: the step fails, the
			// journal is intact.
			return &failure{cause: abi.CauseRecordTooLarge, err: err, dur: dur}, nil
		}
		return nil, fmt.Errorf("journal completion of step %q: %w", s.ID, err)
	}
	for k, v := range res.ContextWrites {
		if old, ok := x.context[k]; ok {
			x.contextBytes -= host.ContextEntryBytes(k, old)
		}
		if string(v) == "null" {
			delete(x.context, k)
		} else {
			x.context[k] = v
			x.contextBytes += host.ContextEntryBytes(k, v)
		}
	}
	x.res.Ran++
	x.outputs.Add(s.ID, out)
	x.checkpoint(i, attempt, out)
	return nil, nil
}

// wait journals a step that asked questions nobody has answered, and stops
// the run until they are.
func (x *execution) wait(ctx context.Context, i, attempt int, f *failure) error {
	s := x.steps[i].step
	msg := fmt.Sprintf("%d question(s) waiting for an answer: %s", len(f.waiting), strings.Join(f.waiting, ", "))
	recs := []*state.Record{
		{Type: state.EventStepWaiting, Run: x.runID, Step: s.ID, Attempt: attempt, Pending: f.waiting, DurationMS: ms(f.dur)},
		{Type: state.EventRunWaiting, Run: x.runID, Step: s.ID, Cause: abi.CauseWaiting, Error: msg},
	}
	qs, _ := x.rt.inputs.Get(f.waiting)
	if err := x.rt.commit(context.WithoutCancel(ctx), recs,
		Event{Type: EventStepWaiting, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt, Duration: f.dur, Questions: qs}); err != nil {
		return fmt.Errorf("journal questions of step %q: %w", s.ID, err)
	}
	return &StepError{Step: s.ID, Attempt: attempt, Cause: abi.CauseWaiting, Err: fmt.Errorf("%w: %s", ErrWaiting, msg)}
}

// askUpfront asks the manifest's [[input]] questions, all together, before
// any step runs. With every one answered, the answers go in each envelope;
// otherwise the run waits (one notification for all of them).
func (x *execution) askUpfront(ctx context.Context) error {
	if len(x.m.Inputs) == 0 {
		return nil
	}
	answers := map[string]string{}
	var pending []string
	for _, in := range x.m.Inputs {
		req := abi.InputRequest{Key: in.Key, Question: in.Question, Options: in.Options, Default: in.Default}
		if in.Timeout > 0 {
			req.Timeout = time.Duration(in.Timeout).String()
		}
		resp, err := x.rt.inputs.Ask(x.runID, "", req)
		if err != nil {
			return fmt.Errorf("[[input]] %q: %w", in.Key, err)
		}
		if !resp.Answered {
			pending = append(pending, resp.ID)
			continue
		}
		answers[in.Key] = resp.Answer
	}
	if len(pending) > 0 {
		msg := fmt.Sprintf("%d [[input]] question(s) waiting for an answer: %s", len(pending), strings.Join(pending, ", "))
		rec := &state.Record{Type: state.EventRunWaiting, Run: x.runID, Cause: abi.CauseInputs, Error: msg, Pending: pending}
		qs, _ := x.rt.inputs.Get(pending)
		if err := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{rec}, Event{Type: EventStepWaiting, Run: x.runID, Index: -1, Questions: qs}); err != nil {
			return fmt.Errorf("journal questions: %w", err)
		}
		return fmt.Errorf("%w: %s", ErrWaiting, msg)
	}
	b, err := jsonenc.Marshal(answers)
	if err != nil {
		return err
	}
	x.answers = b
	return nil
}

// waitInterrupted stops the run until a person says what to do with an
// interrupted non-idempotent step (question qid).
func (x *execution) waitInterrupted(ctx context.Context, i int, rs state.Step, qid string) error {
	id := x.steps[i].step.ID
	msg := fmt.Sprintf("step %q was interrupted in attempt %d and is not idempotent: answer %s with rerun, mark-done or abort (or resume with --rerun-interrupted / --mark-done)",
		id, rs.Attempt, qid)
	rec := &state.Record{Type: state.EventRunWaiting, Run: x.runID, Step: id, Cause: abi.CauseInterrupted, Error: msg, Pending: []string{qid}}
	qs, _ := x.rt.inputs.Get([]string{qid})
	if err := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{rec},
		Event{Type: EventStepWaiting, Run: x.runID, Step: id, Index: i, Attempt: rs.Attempt, Questions: qs}); err != nil {
		return fmt.Errorf("journal question about step %q: %w", id, err)
	}
	return &StepError{Step: id, Attempt: rs.Attempt, Cause: abi.CauseInterrupted, Err: fmt.Errorf("%w (%w): %s", ErrWaiting, ErrInterrupted, msg)}
}

// supersede marks step id's pending questions not in keep superseded. It
// never fails the run: a question left pending only shows in 12fa inputs.
func (x *execution) supersede(id string, keep []string) {
	if n, err := x.rt.inputs.Supersede(x.runID, id, keep); err != nil {
		x.rt.log.Warn("mark questions superseded", "run", x.runID, "step", id, "error", err)
	} else if n > 0 {
		x.rt.log.Debug("questions superseded", "run", x.runID, "step", id, "count", n)
	}
}

// stepInputs gives a step's calls its questions in the store.
type stepInputs struct {
	store     *inputs.Store
	run, step string
}

func (si stepInputs) RequestInput(_ context.Context, req abi.InputRequest) (abi.InputResponse, error) {
	resp, err := si.store.Ask(si.run, si.step, req)
	if errors.Is(err, inputs.ErrExpired) {
		err = fmt.Errorf("%w: %w", host.ErrInputExpired, err)
	}
	return resp, err
}

// failedForGood journals a step's last failed attempt and what its
// on_failure makes of the run: paused (resumable) or failed.
func (x *execution) failedForGood(ctx context.Context, i, attempt int, f *failure, failed *state.Record) error {
	s := x.steps[i].step
	end, sentinel := state.EventRunPaused, ErrRunPaused
	switch {
	case f.cause.NeedsPerson():
		// Whatever on_failure says: only a person can tell what happened.
	case rollsBack(s):
		end, sentinel = state.EventRunRollingBack, ErrRolledBack
	case s.OnFailure != manifest.OnFailurePause:
		end, sentinel = state.EventRunFailed, ErrRunFailed
	}
	serr := &StepError{Step: s.ID, Attempt: attempt, Cause: f.cause, Err: fmt.Errorf("%w (%w): %w", ErrStepFailed, sentinel, f.err)}
	stop := &state.Record{Type: end, Run: x.runID, Step: s.ID, Cause: f.cause, Error: f.err.Error()}
	if jerr := x.rt.commit(context.WithoutCancel(ctx), []*state.Record{failed, stop},
		Event{Type: EventStepFailed, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt, Duration: f.dur, Err: serr}); jerr != nil {
		return errors.Join(serr, fmt.Errorf("journal failure of step %q: %w", s.ID, jerr))
	}
	if rollsBack(s) && !f.cause.NeedsPerson() {
		return x.rollback(ctx, &StepError{Step: s.ID, Attempt: attempt, Cause: f.cause, Err: fmt.Errorf("%w: %w", ErrStepFailed, f.err)})
	}
	x.rt.emit(Event{Type: EventRunFailed, Run: x.runID, Workflow: x.m.Workflow.Name, Err: serr})
	return serr
}

// request is the host call of step i's export fn, for one attempt.
func (x *execution) request(i, attempt int, fn string) host.Request {
	l := &x.steps[i]
	s := l.step
	config := s.Config
	if l.script != nil {
		// The JS step runner's one export runs the script's function fn.
		fn, config = jsrunner.Export, jsrunner.Config(s.Config, s.PluginPath, l.script, fn)
	}
	var http host.HTTPDoer
	if l.http != nil {
		http = l.http.Session() // its own request count, for each call
	}
	var exec host.Execer
	if l.exec != nil {
		exec = l.exec
	}
	return host.Request{
		HTTP:           http,
		Exec:           exec,
		Function:       fn,
		Input:          x.input(l, attempt),
		Config:         config,
		Timeout:        time.Duration(s.Timeout),
		MaxOutputBytes: int(s.MaxOutput),
		Context:        x.context,
		ContextBytes:   x.contextBytes,
		Mounts:         mountsFor(x.m, s),
		OnLog: func(line host.LogLine) {
			x.rt.emit(Event{Type: EventStepLog, Run: x.runID, Step: s.ID, Index: i, Attempt: attempt, Log: &line})
		},
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// mountsFor turns a step's grants into host mounts; host paths are relative
// to the manifest's directory.
func mountsFor(m *manifest.Manifest, s *manifest.Step) []host.Mount {
	var out []host.Mount
	add := func(paths map[string]string, rw bool) {
		for hostPath, guest := range paths {
			out = append(out, host.Mount{HostPath: resolvePath(m.Dir, hostPath), GuestPath: guest, ReadWrite: rw})
		}
	}
	add(s.Allow.Paths, false)
	add(s.Allow.WritePaths, true)
	return out
}
