package runtime

import (
	"fmt"

	"github.com/12fa/12fa/state"
)

// intent is what a caller asks of a run.
type intent int

const (
	// forward: run or resume it to its end (Run, Resume).
	forward intent = iota
	// undo: roll it back (Rollback).
	undo
)

// action is what is done with a run, decided from its status and the
// intent.
type action int

const (
	// actProceed goes on forward from where the run stopped (a resumed run
	// gets a run_resumed record).
	actProceed action = iota
	// actDone has nothing left to do: the run completed; its steps are
	// replayed into the result.
	actDone
	// actRollback starts a rollback (a run_rolling_back record), or starts
	// a failed one again.
	actRollback
	// actContinueRollback finishes a rollback a crash interrupted.
	actContinueRollback
)

// decide is the one place that says what may happen to a run: its status
// against the intent (and, for a failed run, RunOptions.RetryFailed).
//
//	status           forward                        undo
//	running          proceed (resume)               rollback
//	paused           proceed                        rollback
//	waiting          proceed                        rollback
//	failed           proceed with --retry-failed    rollback
//	completed        done                           rollback
//	rolling_back     continue the rollback          continue the rollback
//	rolled_back      refused                        refused
//	rollback_failed  refused (rollback retries it)  rollback again
func decide(run state.Run, in intent, opts RunOptions) (action, error) {
	switch run.Status {
	case state.RunRollingBack:
		return actContinueRollback, nil
	case state.RunRolledBack:
		if in == undo {
			return 0, fmt.Errorf("run %s is rolled back already", run.ID)
		}
		return 0, fmt.Errorf("run %s is %s; there is nothing to resume", run.ID, run.Status)
	}
	if in == undo {
		return actRollback, nil
	}
	switch run.Status {
	case state.RunCompleted:
		return actDone, nil
	case state.RunFailed:
		if !opts.RetryFailed {
			return 0, failedRunError(run)
		}
	case state.RunRollbackFailed:
		return 0, fmt.Errorf("run %s is %s; 12fa rollback %s tries the rollback again", run.ID, run.Status, run.ID)
	}
	return actProceed, nil
}
