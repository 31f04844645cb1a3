package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

type statusOptions struct {
	json bool
	all  bool
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [run-id]",
		Short: "Show runs and their steps",
		Long: `Show the runs in the store and the steps of the newest one (or of RUN-ID).
A step is pending, running (started and not ended: if no 12fa process is
running, it was interrupted), completed or failed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.projectDir()
			if err != nil {
				return err
			}
			runs, err := runtime.ListRuns(dir, g.logger())
			if err != nil {
				return exitFor(err)
			}
			if len(args) == 1 {
				var found []state.Run
				for _, r := range runs {
					if r.ID == args[0] {
						found = append(found, r)
					}
				}
				if len(found) == 0 {
					return exitFor(fmt.Errorf("%w: %q", runtime.ErrRunNotFound, args[0]))
				}
				runs = found
			}
			if o.json {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Runs []state.Run `json:"runs"`
				}{runs})
			}
			printStatus(g, runs, o.all)
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print runs and steps as JSON")
	cmd.Flags().BoolVar(&o.all, "all", false, "show the steps of every run, not only the newest")
	return cmd
}

func printStatus(g *globalOptions, runs []state.Run, all bool) {
	if len(runs) == 0 {
		fmt.Fprintln(g.stdout, "no runs yet")
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tWORKFLOW\tSTATUS\tSTEPS DONE\tUPDATED")
	for _, r := range runs {
		done := 0
		for _, s := range r.Steps {
			if s.Status == state.StepCompleted {
				done++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", r.ID, termsafe.Text(r.Workflow), r.Status, done, len(r.Steps), r.UpdatedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
	for i, r := range runs {
		if !all && i != len(runs)-1 {
			continue
		}
		fmt.Fprintf(g.stdout, "\nrun %s (%s)\n", r.ID, r.Status)
		if why := stopReason(r); why != "" {
			fmt.Fprintf(g.stdout, "  %s\n", why)
		}
		tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tSTATUS\tATTEMPT\tDURATION\tOUTPUT\tNOTE")
		for _, s := range r.Steps {
			note := s.Error
			if s.Cause != "" {
				note = string(s.Cause) + ": " + s.Error
			}
			if s.MarkedDone {
				note = "marked done by hand"
			}
			if s.Status == state.StepRunning && r.Status == state.RunRunning {
				note = "started, not ended (interrupted unless a run is in progress)"
			}
			dur := "-"
			if s.DurationMS > 0 {
				dur = (time.Duration(s.DurationMS * float64(time.Millisecond))).Round(10 * time.Microsecond).String()
			}
			out := "-"
			if s.Status == state.StepCompleted {
				out = fmt.Sprintf("%d B", s.OutputSize)
				if s.OutputBinary {
					out += ", binary (base64)"
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", s.ID, s.Status, s.Attempt, dur, out, firstLineOf(note))
		}
		tw.Flush()
	}
}

// stopReason says in one line why a run stopped and how to go on.
func stopReason(r state.Run) string {
	var next string
	switch r.Status {
	case state.RunPaused:
		next = "`12fa resume` tries it again"
	case state.RunFailed:
		next = "`12fa resume --retry-failed` tries it again"
	case state.RunRollbackFailed:
		return fmt.Sprintf("rollback failed: %s; `12fa rollback %s` tries it again", firstLineOf(r.Error), r.ID)
	case state.RunWaiting:
		return fmt.Sprintf("waiting: %s; `12fa inputs` lists them, `12fa respond <id> <answer>` answers, then `12fa resume`", firstLineOf(r.Error))
	case state.RunRollingBack:
		return fmt.Sprintf("rolling back (%s); if no 12fa process is running, `12fa resume` finishes it", firstLineOf(r.Error))
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
		return fmt.Sprintf("stopped: step %q failed after %s (%s): %s; %s", s.ID, attempts, r.Cause, firstLineOf(r.Error), next)
	}
	return fmt.Sprintf("stopped (%s): %s; %s", r.Cause, firstLineOf(r.Error), next)
}

// firstLineOf is the first line of s, cut at 200 bytes and terminal-safe.
func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 200 {
		line = strings.ToValidUTF8(line[:200], "") + "…"
	}
	return termsafe.Text(line)
}
