package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"

	"github.com/12fa/12fa/checkpoint"
	"github.com/12fa/12fa/state"
)

// Restored says what Restore did.
type Restored struct {
	Run  string
	Step string
	// Rerun lists the steps that will run again on resume.
	Rerun []string
	// Files is set when the working tree was restored too.
	Files bool
}

// Restore brings a run back to just after the checkpoint's step completed:
// later steps are pending again (and will run again on resume), and the
// workflow context is what it was then. With files, the working tree is
// restored from the checkpoint's commit as well; that is refused when the
// tree has changes git does not have, unless force.
func (r *Runtime) Restore(ctx context.Context, checkpointID string, files, force bool) (Restored, error) {
	cp, err := findCheckpoint(r.store, r.cfg.ProjectDir, checkpointID)
	if err != nil {
		return Restored{}, err
	}
	run, err := r.lookup(cp.Run)
	if err != nil {
		return Restored{}, fmt.Errorf("restore: %w", err)
	}
	if err := r.claim(run.ID); err != nil {
		return Restored{}, fmt.Errorf("restore: %w", err)
	}
	defer r.store.Release(run.ID)
	k := -1
	contextThen := map[string]json.RawMessage{}
	for i, s := range run.Steps {
		if s.Status == state.StepCompleted {
			for key, v := range s.ContextWrites {
				if string(v) == "null" {
					delete(contextThen, key)
				} else {
					contextThen[key] = v
				}
			}
		}
		if s.ID == cp.Step {
			k = i
			break
		}
	}
	if k < 0 || run.Steps[k].Status != state.StepCompleted {
		return Restored{}, fmt.Errorf("restore: step %q of run %s is not completed", cp.Step, run.ID)
	}
	res := Restored{Run: run.ID, Step: cp.Step}
	for _, s := range run.Steps[k+1:] {
		if s.Status != state.StepPending {
			res.Rerun = append(res.Rerun, s.ID)
		}
	}
	if files {
		if cp.Commit == "" {
			return res, fmt.Errorf("restore --files: checkpoint %s has no git commit", cp.ID)
		}
		g, err := checkpoint.Open(r.cfg.ProjectDir, "")
		if err != nil {
			return res, fmt.Errorf("restore --files: %w", err)
		}
		if err := g.RestoreFiles(cp.Commit, force); err != nil {
			if !cp.in(g) {
				return res, fmt.Errorf("restore --files: %w (the commit is in the repository at %s, where the step ran)", err, cp.where())
			}
			return res, fmt.Errorf("restore --files: %w", err)
		}
		res.Files = true
	}
	rec := &state.Record{Type: state.EventRunRestored, Run: run.ID, Step: cp.Step, Context: maps.Clone(contextThen)}
	if err := r.commit(ctx, []*state.Record{rec}); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

// Fork starts a new run of the same workflow that reuses the recorded
// outputs (and context writes) of runID's steps before fromStep, and
// returns its id; Resume runs the rest. It is DBOS's fork: redo from a step
// with, say, a fixed plugin.
func (r *Runtime) Fork(ctx context.Context, runID, fromStep string) (string, error) {
	src, err := r.lookup(runID)
	if err != nil {
		return "", fmt.Errorf("fork: %w", err)
	}
	k := -1
	for i, s := range src.Steps {
		if s.ID == fromStep {
			k = i
		}
	}
	if k < 0 {
		return "", fmt.Errorf("fork: run %s has no step %q", runID, fromStep)
	}
	if src.Manifest != "" {
		if _, err := os.Stat(src.Manifest); err != nil {
			return "", fmt.Errorf("fork: the run's manifest: %w", err)
		}
	}
	id := r.newRunID()
	decl := make([]state.StepDecl, len(src.Steps))
	for i, s := range src.Steps {
		decl[i] = state.StepDecl{ID: s.ID, Plugin: s.Plugin}
	}
	recs := []*state.Record{{Type: state.EventRunStarted, Run: id, Workflow: src.Workflow, Manifest: src.Manifest, Steps: decl}}
	for _, s := range src.Steps[:k] {
		if s.Status != state.StepCompleted {
			return "", fmt.Errorf("fork: step %q of run %s is %s; only completed steps can be reused", s.ID, runID, s.Status)
		}
		recs = append(recs, &state.Record{Type: state.EventStepCompleted, Run: id, Step: s.ID, Attempt: s.Attempt,
			Output: s.Output, OutputBinary: s.OutputBinary, Context: s.ContextWrites, ForkedFrom: runID})
	}
	if err := r.commit(ctx, recs); err != nil {
		return "", fmt.Errorf("fork: %w", err)
	}
	return id, nil
}
