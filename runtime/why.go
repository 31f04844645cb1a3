package runtime

import (
	"fmt"

	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/state"
)

// StopReason says in one line why a run stopped and what to type to go on
// ("" for a run that did not stop); guest text in it is terminal-safe.
func StopReason(r state.Run) string {
	var next string
	switch r.Status {
	case state.RunPaused:
		next = "`12fa resume` tries it again"
	case state.RunFailed:
		next = "`12fa resume --retry-failed` tries it again"
	case state.RunRollbackFailed:
		return fmt.Sprintf("rollback failed: %s; `12fa rollback %s` tries it again", termsafe.FirstLine(r.Error), r.ID)
	case state.RunWaiting:
		return fmt.Sprintf("waiting: %s; `12fa inputs` lists them, `12fa respond <id> <answer>` answers, then `12fa resume`", termsafe.FirstLine(r.Error))
	case state.RunRollingBack:
		return fmt.Sprintf("rolling back (%s); if no 12fa process is running, `12fa resume` finishes it", termsafe.FirstLine(r.Error))
	case state.RunRolledBack:
		next = "the run is rolled back"
	default:
		return ""
	}
	for _, s := range r.Steps {
		if s.Status != state.StepFailed {
			continue
		}
		attempts := "1 attempt"
		if s.Attempt != 1 {
			attempts = fmt.Sprintf("%d attempts", s.Attempt)
		}
		return fmt.Sprintf("stopped: step %q failed after %s (%s): %s; %s", s.ID, attempts, r.Cause, termsafe.FirstLine(r.Error), next)
	}
	return fmt.Sprintf("stopped (%s): %s; %s", r.Cause, termsafe.FirstLine(r.Error), next)
}
