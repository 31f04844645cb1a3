package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/runtime"
)

func newPruneCommand(g *globalOptions) *cobra.Command {
	var (
		olderThan string
		keep      int
	)
	cmd := &cobra.Command{
		Use:   "prune --older-than DURATION [--keep N]",
		Short: "Remove finished runs older than a duration, with their checkpoints and blobs",
		Long: `Remove the finished runs (completed, failed, rolled back, rollback failed) last
updated more than DURATION ago (90d, 2w, 36h, 30m), keeping the N most recent
finished runs however old: their run files, their lines in the index, their
checkpoint records and shadow refs (refs/12fa/<run>/...), and the blobs no
remaining run refers to. Unfinished runs (running, waiting, paused, rolling
back) are never removed. A prune that is interrupted is finished by the next
12fa process that opens the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan == "" {
				return exitFor(errors.New("prune: --older-than is required (say 90d to remove finished runs older than 90 days)"))
			}
			age, err := parseAge(olderThan)
			if err != nil {
				return exitFor(errors.New("prune: --older-than: " + err.Error()))
			}
			if keep < 0 {
				return exitFor(errors.New("prune: --keep must be 0 or more"))
			}
			cfg, err := g.runtimeConfig(nil)
			if err != nil {
				return exitFor(err)
			}
			rt, err := runtime.New(cmd.Context(), cfg)
			if err != nil {
				return exitFor(err)
			}
			gone, err := rt.Prune(cmd.Context(), runtime.PruneOptions{OlderThan: time.Now().Add(-age), Keep: keep})
			if cerr := rt.Close(cmd.Context()); err == nil {
				err = cerr
			}
			if err != nil {
				return exitFor(err)
			}
			if len(gone) == 0 {
				fmt.Fprintf(g.stdout, "nothing to prune: no finished run is older than %s (beyond the %d kept)\n", olderThan, keep)
				return nil
			}
			steps := 0
			for _, r := range gone {
				steps += r.Steps
			}
			fmt.Fprintf(g.stdout, "pruned %d runs (%d steps) last updated before %s\n", len(gone), steps,
				time.Now().Add(-age).Local().Format(time.DateTime))
			return nil
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "", "remove finished runs last updated more than this long ago (90d, 2w, 36h, 30m)")
	cmd.Flags().IntVar(&keep, "keep", 0, "keep this many of the most recent finished runs however old")
	return cmd
}

// parseAge reads a duration with Go's units plus d (days) and w (weeks).
func parseAge(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("%q is not a duration (90d, 2w, 36h, 30m)", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (90d, 2w, 36h, 30m)", s)
	}
	return d, nil
}
