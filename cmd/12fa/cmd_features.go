package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/features"
	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/runtime"
)

func (g *globalOptions) features() (*features.Tracker, error) {
	dir, err := g.projectDir()
	if err != nil {
		return nil, err
	}
	return features.New(runtime.StoreDir(dir), nil), nil
}

func newFeaturesCommand(g *globalOptions) *cobra.Command {
	var status string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "features",
		Short: "List tracked features (.12fa/features.json)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.features()
			if err != nil {
				return err
			}
			fs, err := t.List(status)
			if err != nil {
				return exitFor(err)
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Features []features.Feature `json:"features"`
				}{fs})
			}
			if len(fs) == 0 {
				fmt.Fprintln(g.stdout, "no features")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tNAME")
			for _, f := range fs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", f.ID, f.Status, f.Priority, termsafe.Text(f.Name))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only features with this status: pending, in-progress, complete, blocked")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the features as JSON")
	return cmd
}

func newAddFeatureCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   `add-feature "Name" [priority]`,
		Short: "Track a new feature (priority: low, medium, high, critical; default medium)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.features()
			if err != nil {
				return err
			}
			prio := ""
			if len(args) == 2 {
				prio = args[1]
			}
			f, err := t.Add(args[0], prio)
			if err != nil {
				return exitFor(err)
			}
			fmt.Fprintf(g.stdout, "feature %d: %s (%s, %s)\n", f.ID, termsafe.Text(f.Name), f.Priority, f.Status)
			return nil
		},
	}
}

func newFeatureCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "feature <id> <status>",
		Short: "Set a feature's status: pending, in-progress, complete, blocked",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.features()
			if err != nil {
				return err
			}
			id, err := strconv.Atoi(args[0])
			if err != nil {
				return exitFor(fmt.Errorf("feature id %q is not a number", args[0]))
			}
			f, err := t.SetStatus(id, args[1])
			if err != nil {
				return exitFor(err)
			}
			fmt.Fprintf(g.stdout, "feature %d: %s is %s\n", f.ID, termsafe.Text(f.Name), f.Status)
			return nil
		},
	}
}
