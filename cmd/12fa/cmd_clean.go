package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

func newCleanCommand(g *globalOptions) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove the store (.12fa/): every run, its outputs and context",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := g.projectDir()
			if err != nil {
				return err
			}
			store := runtime.StoreDir(dir)
			if _, err := os.Stat(store); errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(g.stdout, "nothing to clean: %s does not exist\n", store)
				return nil
			}
			if !yes {
				var runs []state.RunInfo
				if v, err := runtime.OpenView(dir, nil); err == nil {
					runs, _ = v.Runs(state.ListOptions{})
					v.Close()
				}
				if !isTerminal(g.stdin) {
					return exitFor(fmt.Errorf("clean: refusing to remove %s (%d runs) without confirmation: pass --yes", store, len(runs)))
				}
				fmt.Fprintf(g.stdout, "Remove %s with %d runs? This cannot be undone. [y/N] ", store, len(runs))
				answer, _ := bufio.NewReader(g.stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					fmt.Fprintln(g.stdout, "not removed")
					return nil
				}
			}
			if err := runtime.Clean(dir); err != nil {
				return exitFor(err)
			}
			fmt.Fprintf(g.stdout, "removed %s\n", store)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
