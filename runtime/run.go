package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/state"
)

// RunOptions say which run to continue and what a resume may do.
type RunOptions struct {
	// RunID continues this run. Empty: continue the newest unfinished run of
	// the same workflow, or start a new one.
	RunID string
	// New always starts a new run.
	New bool
	// Upgrade accepts plugins that changed since the run started.
	Upgrade bool
	// RerunInterrupted runs an interrupted non-idempotent step again.
	RerunInterrupted bool
	// MarkDone completes an interrupted non-idempotent step without running
	// it again (its output is null).
	MarkDone bool
	// RetryFailed continues a failed run from its failed step.
	RetryFailed bool
	// Wait keeps going when a step waits for answers: Run waits for them
	// (answered by another process, or by defaults when questions expire)
	// and continues, instead of returning ErrWaiting. WaitTimeout, when
	// set, bounds the wait.
	Wait        bool
	WaitTimeout time.Duration
}

// Result is the outcome of Run or Resume.
type Result struct {
	RunID  string          `json:"run_id"`
	Status state.RunStatus `json:"status"`
	// Steps holds every step's final state in manifest order.
	Steps []state.Step `json:"steps"`
	// Ran counts the steps that ran in this call; Replayed those whose output
	// came from the journal; MarkedDone those completed by RunOptions.MarkDone.
	Ran        int `json:"ran"`
	Replayed   int `json:"replayed"`
	MarkedDone int `json:"marked_done"`
}

// Output returns the output of a step.
func (res *Result) Output(step string) json.RawMessage {
	for _, s := range res.Steps {
		if s.ID == step {
			return s.Output
		}
	}
	return nil
}

// newRunID returns a new run id by the runtime's clock.
func (r *Runtime) newRunID() string { return NewRunID(r.cfg.Now()) }

// NewRunID returns a sortable, readable, unique id for a run started at t:
// the time to the second and 48 random bits (three bytes let two of a
// thousand runs started in one second collide every few seconds).
func NewRunID(t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// Resume continues the run with the given id, reading the manifest it was
// started from.
func (r *Runtime) Resume(ctx context.Context, runID string, opts RunOptions) (*Result, error) {
	return r.resume(ctx, runID, opts, forward)
}

// resume carries intent out on a run, reading the manifest it was started
// from.
func (r *Runtime) resume(ctx context.Context, runID string, opts RunOptions, in intent) (*Result, error) {
	if runID == "" {
		runs, err := r.store.List(state.ListOptions{Status: continuable(opts), Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if len(runs) == 0 {
			return nil, fmt.Errorf("resume: %w: no unfinished run in the store", ErrRunNotFound)
		}
		runID = runs[0].ID
	}
	run, err := r.lookup(runID)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	if _, err := decide(run, in, opts); err != nil {
		return nil, err
	}
	if run.Manifest == "" {
		return nil, fmt.Errorf("resume %s: the run was built in code; call Run with its workflow", runID)
	}
	m, err := manifest.Load(run.Manifest)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", runID, err)
	}
	opts.RunID = runID
	return r.execute(ctx, m, opts, in)
}

// Rollback undoes the run with the given id (saga): the rollback exports of
// its failed or interrupted step and of its completed steps, in reverse
// order. It continues a rollback under way or one that failed.
func (r *Runtime) Rollback(ctx context.Context, runID string) (*Result, error) {
	if runID == "" {
		runs, err := r.store.List(state.ListOptions{Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("rollback: %w", err)
		}
		if len(runs) == 0 {
			return nil, fmt.Errorf("rollback: %w: the store has no runs", ErrRunNotFound)
		}
		runID = runs[0].ID
	}
	return r.resume(ctx, runID, RunOptions{}, undo)
}

// Run runs the workflow m: a new run, or the continuation of an unfinished
// one (see RunOptions).
func (r *Runtime) Run(ctx context.Context, m *manifest.Manifest, opts RunOptions) (*Result, error) {
	return r.execute(ctx, m, opts, forward)
}

// execute carries intent out on a run of m, waiting for answers as
// opts.Wait says.
func (r *Runtime) execute(ctx context.Context, m *manifest.Manifest, opts RunOptions, in intent) (*Result, error) {
	for {
		res, err := r.runOnce(ctx, m, opts, in)
		if !opts.Wait || res == nil || !errors.Is(err, ErrWaiting) {
			return res, err
		}
		var ids []string
		if run, err := r.store.Run(res.RunID); err == nil {
			ids = append(ids, run.Pending...)
		}
		for _, s := range res.Steps {
			ids = append(ids, s.Pending...)
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if opts.WaitTimeout > 0 {
			wctx, cancel = context.WithTimeout(ctx, opts.WaitTimeout)
		}
		werr := r.inputs.Wait(wctx, ids)
		cancel()
		if werr != nil && !errors.Is(werr, inputs.ErrExpired) {
			// Gave up waiting: the run stays waiting for a later resume.
			return res, fmt.Errorf("%w (stopped waiting: %v)", err, werr)
		}
		// Answered (or expired: the step runs again and fails or takes its
		// default).
		opts.RunID, opts.New = res.RunID, false
	}
}

// WaitForResponse waits up to timeout for question id to be answered (by
// `12fa respond` or Respond, from any process) and returns it.
func (r *Runtime) WaitForResponse(ctx context.Context, id string, timeout time.Duration) (inputs.Question, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.inputs.Wait(ctx, []string{id}); err != nil {
		return inputs.Question{}, err
	}
	qs, err := r.inputs.Get([]string{id})
	if err != nil || len(qs) == 0 {
		return inputs.Question{}, fmt.Errorf("question %s: %w", id, inputs.ErrNotFound)
	}
	return qs[0], nil
}

// runOnce is one pass of Run: it stops at the first step that waits.
func (r *Runtime) runOnce(ctx context.Context, m *manifest.Manifest, opts RunOptions, in intent) (*Result, error) {
	steps, err := r.load(ctx, m)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, l := range steps {
			if l.http != nil {
				l.http.Close() // its idle connections end with the run
			}
		}
	}()
	run, act, err := r.pickRun(ctx, m, steps, opts, in)
	if err != nil {
		return nil, err
	}
	defer r.store.Release(run.ID)
	x := &execution{rt: r, m: m, steps: steps, opts: opts, act: act, runID: run.ID,
		context: contextMap(run.Context), res: &Result{RunID: run.ID}, notifier: r.notifierFor(m)}
	if run.Status != state.RunRunning || run.Steps[0].Attempt > 0 {
		// A resumed run: its next checkpoint follows its last one.
		x.lastCommit = r.lastCommit(run, m.Checkpoint.Git)
	}
	if run.Status == state.RunRunning && len(run.Steps) > 0 && run.Steps[0].Status == state.StepPending && run.Steps[0].Attempt == 0 {
		x.announce(ctx, abi.Notification{Title: "Run started: " + m.Workflow.Name, Priority: 2, Tags: []string{"arrow_forward"},
			Message: fmt.Sprintf("run %s, %d steps", run.ID, len(run.Steps))})
	}
	res, err := x.run(ctx, &run)
	x.announceEnd(ctx, res)
	return res, err
}

// claim makes this process the executor of a run until the store's
// Release; ErrRunActive when another goroutine already executes it.
func (r *Runtime) claim(id string) error {
	if err := r.store.Claim(id); err != nil {
		if errors.Is(err, state.ErrClaimed) {
			return fmt.Errorf("run %s: %w", id, ErrRunActive)
		}
		return err
	}
	return nil
}

// pickRun finds the run to continue or starts a new one, claims it, and
// checks that the manifest and plugins still match it; decide says what is
// done with it. The caller releases the claim when it is done; on error
// nothing stays claimed.
func (r *Runtime) pickRun(ctx context.Context, m *manifest.Manifest, steps []loaded, opts RunOptions, in intent) (run state.Run, act action, err error) {
	found := false
	switch {
	case opts.RunID != "":
		if err := r.claim(opts.RunID); err != nil {
			return run, 0, err
		}
		if run, err = r.lookup(opts.RunID); err != nil {
			r.store.Release(opts.RunID)
			return run, 0, err
		}
		found = true
	case !opts.New:
		runs, err := r.store.List(state.ListOptions{Workflow: m.Workflow.Name, Manifest: m.Path, Status: continuable(opts)})
		if err != nil {
			return run, 0, err
		}
		for _, info := range runs {
			if r.claim(info.ID) != nil {
				continue
			}
			if run, err = r.lookup(info.ID); err != nil {
				r.store.Release(info.ID)
				return run, 0, err
			}
			found = true
			break
		}
	}
	if found {
		defer func() {
			if err != nil {
				r.store.Release(run.ID)
			}
		}()
	}
	if !found {
		id := r.newRunID()
		decl := make([]state.StepDecl, len(steps))
		for i, l := range steps {
			decl[i] = state.StepDecl{ID: l.step.ID, Plugin: l.sha}
		}
		rec := &state.Record{Type: state.EventRunStarted, Run: id, Workflow: m.Workflow.Name, Manifest: m.Path, Steps: decl}
		if err := r.claim(id); err != nil {
			return run, 0, err
		}
		if err := r.commit(ctx, []*state.Record{rec}, Event{Type: EventRunStarted, Run: id, Workflow: m.Workflow.Name, Steps: len(steps)}); err != nil {
			r.store.Release(id)
			return run, 0, fmt.Errorf("start run: %w", err)
		}
		if run, err = r.lookup(id); err != nil {
			r.store.Release(id)
		}
		return run, actProceed, err
	}

	if act, err = decide(run, in, opts); err != nil {
		return run, 0, err
	}
	if len(run.Steps) != len(steps) {
		return run, 0, fmt.Errorf("run %s: %w: it has %d steps, %s has %d", run.ID, ErrManifestChanged, len(run.Steps), m.Path, len(steps))
	}
	var upgrades []*state.Record
	for i, l := range steps {
		rs := run.Steps[i]
		if rs.ID != l.step.ID {
			return run, 0, fmt.Errorf("run %s: %w: step %d is %q in the run and %q in %s", run.ID, ErrManifestChanged, i+1, rs.ID, l.step.ID, m.Path)
		}
		if rs.Status == state.StepCompleted || rs.Plugin == l.sha {
			continue
		}
		if !opts.Upgrade {
			return run, 0, &StepError{Step: rs.ID, Cause: abi.CausePluginChanged, Err: fmt.Errorf("%w: %s is now %s, the run started with %s; resume with --upgrade to accept it",
				ErrPluginChanged, l.step.Plugin, short(l.sha), short(rs.Plugin))}
		}
		upgrades = append(upgrades, &state.Record{Type: state.EventPluginUpgraded, Run: run.ID, Step: rs.ID, Plugin: l.sha})
	}
	if act == actDone {
		return run, act, nil
	}
	var recs []*state.Record
	if act == actProceed {
		recs = append(recs, &state.Record{Type: state.EventRunResumed, Run: run.ID})
	}
	recs = append(recs, upgrades...)
	if len(recs) == 0 {
		return run, act, nil
	}
	if err := r.commit(ctx, recs, Event{Type: EventRunResumed, Run: run.ID, Workflow: m.Workflow.Name, Steps: len(steps)}); err != nil {
		return run, 0, fmt.Errorf("resume run %s: %w", run.ID, err)
	}
	run, err = r.lookup(run.ID)
	return run, act, err
}

// continuable lists the statuses of the runs that run or resume picks up
// without being named: an interrupted, paused or waiting run, or one whose
// rollback was interrupted; a failed one only with RetryFailed.
func continuable(opts RunOptions) []state.RunStatus {
	st := []state.RunStatus{state.RunRunning, state.RunPaused, state.RunRollingBack, state.RunWaiting}
	if opts.RetryFailed {
		st = append(st, state.RunFailed)
	}
	return st
}

func failedRunError(run state.Run) error {
	return fmt.Errorf("run %s: %w at step %q (%s): %s; resume with --retry-failed to try that step again",
		run.ID, ErrRunFailed, failedStep(run), run.Cause, run.Error)
}

func failedStep(run state.Run) string {
	for _, s := range run.Steps {
		if s.Status == state.StepFailed {
			return s.ID
		}
	}
	return "?"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// RunAll runs the workflows concurrently, at most parallel at a time (all of
// them when parallel < 1), each as Run would, and returns their results and
// errors in the order of ms.
func (r *Runtime) RunAll(ctx context.Context, ms []*manifest.Manifest, opts RunOptions, parallel int) ([]*Result, []error) {
	if parallel < 1 || parallel > len(ms) {
		parallel = len(ms)
	}
	results := make([]*Result, len(ms))
	errs := make([]error, len(ms))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = r.Run(ctx, m, opts)
		}()
	}
	wg.Wait()
	return results, errs
}
