package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/runtime"
)

func newCheckpointsCommand(g *globalOptions) *cobra.Command {
	var (
		asJSON bool
		all    bool
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "checkpoints [run-id]",
		Short: "List checkpoints: one per completed step, with its shadow git commit (refs/12fa/<run>/<step>)",
		Long: `List the checkpoints of RUN-ID, or those of the most recently active runs
(--limit, default 20; --all for every run) and the manual ones, oldest first.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run := ""
			if len(args) == 1 {
				run = args[0]
			}
			v, err := g.view(cmd.Context())
			if err != nil {
				return exitFor(err)
			}
			if all {
				limit = 0
			}
			shown, err := v.Checkpoints(run, limit)
			v.Close()
			if err != nil {
				return exitFor(err)
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Checkpoints []runtime.Checkpoint `json:"checkpoints"`
				}{shown})
			}
			if len(shown) == 0 {
				fmt.Fprintln(g.stdout, "no checkpoints")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tSTEP\tCOMMIT\tFILES\tREHASHED\tTOOK")
			for _, cp := range shown {
				commit := "-"
				if cp.Commit != "" {
					commit = cp.Commit[:12]
					if cp.Reused {
						commit += " (unchanged)"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", cp.ID, cp.Time.Local().Format(time.DateTime), cp.Step, commit,
					cp.Files, cp.Hashed, time.Duration(cp.DurationMS*float64(time.Millisecond)).Round(10*time.Microsecond))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checkpoints as JSON")
	cmd.Flags().IntVar(&limit, "limit", 20, "list the checkpoints of this many of the most recent runs")
	cmd.Flags().BoolVar(&all, "all", false, "list the checkpoints of every run")
	return cmd
}
