package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/runtime"
)

func newInitCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the store (.12fa/) in the project directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := g.projectDir()
			if err != nil {
				return err
			}
			if err := runtime.Init(dir); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "initialized %s\n", runtime.StoreDir(dir))
			return nil
		},
	}
}
