package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

type statusOptions struct {
	json     bool
	all      bool
	limit    int
	status   []string
	workflow string
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [run-id]",
		Short: "Show runs and their steps",
		Long: `Show the most recently active runs in the store, newest first, and the steps
of the newest (or of RUN-ID). A step is pending, running (started and not
ended: if no 12fa process is running, it was interrupted), completed or
failed. --json prints the runs with their steps, one at a time as they are
read.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.view(cmd.Context())
			if err != nil {
				return exitFor(err)
			}
			defer st.Close()
			lo := state.ListOptions{Workflow: o.workflow}
			for _, s := range o.status {
				lo.Status = append(lo.Status, state.RunStatus(s))
			}
			if !o.all {
				lo.Limit = o.limit
			}
			var one *state.Run
			if len(args) == 1 {
				r, err := st.Run(args[0])
				if err != nil {
					return exitFor(err)
				}
				one = &r
			}
			if o.json {
				return streamRuns(g, st, func(fn func(state.RunInfo) bool) error {
					if one != nil {
						fn(one.Info())
						return nil
					}
					return st.Walk(lo, fn)
				})
			}
			var infos []state.RunInfo
			more := false
			if one != nil {
				infos = []state.RunInfo{one.Info()}
			} else {
				if lo.Limit > 0 {
					lo.Limit++ // one more says whether there are more
				}
				if infos, err = st.Runs(lo); err != nil {
					return exitFor(err)
				}
				if !o.all && len(infos) > o.limit {
					infos, more = infos[:o.limit], true
				}
			}
			if len(infos) == 0 {
				if len(o.status) > 0 || o.workflow != "" {
					fmt.Fprintln(g.stdout, "no runs match")
				} else {
					fmt.Fprintln(g.stdout, "no runs yet")
				}
				return nil
			}
			printRuns(g, infos)
			if more {
				fmt.Fprintf(g.stdout, "(the %d most recent; --limit N or --all shows more)\n", o.limit)
			}
			newest, err := st.Run(infos[0].ID)
			if err != nil {
				return exitFor(err)
			}
			printSteps(g, newest)
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the runs with their steps as JSON")
	cmd.Flags().BoolVar(&o.all, "all", false, "list every run, not only the most recent")
	cmd.Flags().IntVar(&o.limit, "limit", 20, "how many runs to list")
	cmd.Flags().StringSliceVar(&o.status, "status", nil, "list only runs in these statuses (running, waiting, paused, completed, failed, rolling_back, rolled_back, rollback_failed)")
	cmd.Flags().StringVar(&o.workflow, "workflow", "", "list only runs of this workflow")
	return cmd
}

// streamRuns prints {"runs": [...]} with each run read and written in
// turn, so that a long history needs the memory of one run.
func streamRuns(g *globalOptions, st *runtime.View, walk func(func(state.RunInfo) bool) error) error {
	if _, err := io.WriteString(g.stdout, "{\n  \"runs\": ["); err != nil {
		return err
	}
	n := 0
	var failed error
	err := walk(func(info state.RunInfo) bool {
		r, err := st.Run(info.ID)
		if errors.Is(err, runtime.ErrRunNotFound) {
			return true // pruned meanwhile
		}
		var b []byte
		if err == nil {
			b, err = json.MarshalIndent(r, "    ", "  ")
		}
		if err == nil {
			sep := ","
			if n == 0 {
				sep = ""
			}
			_, err = fmt.Fprintf(g.stdout, "%s\n    %s", sep, b)
		}
		if err != nil {
			failed = err
			return false
		}
		n++
		return true
	})
	if err = errors.Join(err, failed); err != nil {
		return exitFor(err)
	}
	end := "]\n}\n"
	if n > 0 {
		end = "\n  ]\n}\n"
	}
	_, err = io.WriteString(g.stdout, end)
	return err
}

func printRuns(g *globalOptions, runs []state.RunInfo) {
	tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tWORKFLOW\tSTATUS\tSTEPS DONE\tUPDATED")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", r.ID, termsafe.Text(r.Workflow), r.Status, r.Done, r.Steps, r.UpdatedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
}

func printSteps(g *globalOptions, r state.Run) {
	fmt.Fprintf(g.stdout, "\nrun %s (%s)\n", r.ID, r.Status)
	if why := runtime.StopReason(r); why != "" {
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
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", s.ID, s.Status, s.Attempt, dur, out, termsafe.FirstLine(note))
	}
	tw.Flush()
}
