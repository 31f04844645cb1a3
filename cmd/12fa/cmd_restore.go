package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/runtime"
)

func newRestoreCommand(g *globalOptions) *cobra.Command {
	var files, force, yes bool
	cmd := &cobra.Command{
		Use:   "restore <checkpoint-id>",
		Short: "Bring a run back to just after a checkpoint's step (later steps run again on resume)",
		Long: `Bring a run back to just after the checkpoint's step completed: its later
steps become pending and run again on the next resume, and the workflow
context is what it was then. With --files, the working tree is restored from
the checkpoint's git commit too (refused over uncommitted changes unless
--force). HEAD, the index and branches are never touched.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := g.view(cmd.Context())
			if err != nil {
				return exitFor(err)
			}
			cp, err := v.Checkpoint(args[0])
			v.Close()
			if err != nil {
				return exitFor(err)
			}
			run, step := cp.Run, cp.Step
			what := "its state"
			if files {
				what = "its state and the working tree"
			}
			fmt.Fprintf(g.stdout, "restoring %s of run %s to just after step %q; the steps after it will run again on resume\n", what, run, step)
			if !yes {
				if !isTerminal(g.stdin) {
					return exitFor(fmt.Errorf("restore: pass --yes to confirm without a terminal"))
				}
				fmt.Fprint(g.stdout, "Go on? [y/N] ")
				answer, _ := bufio.NewReader(g.stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					fmt.Fprintln(g.stdout, "not restored")
					return nil
				}
			}
			cfg, err := g.runtimeConfig(nil)
			if err != nil {
				return exitFor(err)
			}
			rt, err := runtime.New(cmd.Context(), cfg)
			if err != nil {
				return exitFor(err)
			}
			res, err := rt.Restore(cmd.Context(), args[0], files, force)
			if cerr := rt.Close(cmd.Context()); err == nil {
				err = cerr
			}
			if err != nil {
				return exitFor(err)
			}
			fmt.Fprintf(g.stdout, "restored run %s to after step %q", res.Run, res.Step)
			if len(res.Rerun) > 0 {
				fmt.Fprintf(g.stdout, "; will run again: %s", strings.Join(res.Rerun, ", "))
			}
			if res.Files {
				fmt.Fprint(g.stdout, "; working tree restored")
			}
			fmt.Fprintf(g.stdout, "\n12fa resume %s continues\n", res.Run)
			return nil
		},
	}
	cmd.Flags().BoolVar(&files, "files", false, "restore the working tree from the checkpoint's commit too")
	cmd.Flags().BoolVar(&force, "force", false, "with --files, overwrite uncommitted changes")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func newForkCommand(g *globalOptions) *cobra.Command {
	o := &runFlags{}
	var from string
	cmd := &cobra.Command{
		Use:   "fork <run-id> --from-step <id>",
		Short: "Start a new run that reuses a run's outputs before a step and runs the rest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return exitFor(fmt.Errorf("fork: --from-step is required"))
			}
			return execute(cmd, g, &o.outputFlags, false, func(rt *runtime.Runtime) ([]*runtime.Result, []error) {
				id, err := rt.Fork(cmd.Context(), args[0], from)
				if err != nil {
					return []*runtime.Result{nil}, []error{err}
				}
				res, err := rt.Resume(cmd.Context(), id, o.options())
				return []*runtime.Result{res}, []error{err}
			})
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&from, "from-step", "", "the first step to run again; earlier ones reuse the run's outputs")
	return cmd
}
