package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
)

// runFlags are the options run and resume share.
type runFlags struct {
	wait             bool
	waitTimeout      time.Duration
	upgrade          bool
	rerunInterrupted bool
	markDone         bool
	retryFailed      bool
	outputFlags
}

func (o *runFlags) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.upgrade, "upgrade", false, "accept plugins that changed since the run started")
	fs.BoolVar(&o.rerunInterrupted, "rerun-interrupted", false, "run an interrupted non-idempotent step again")
	fs.BoolVar(&o.markDone, "mark-done", false, "complete an interrupted non-idempotent step without running it (output null)")
	fs.BoolVar(&o.retryFailed, "retry-failed", false, "continue a failed run from its failed step")
	fs.BoolVar(&o.wait, "wait", false, "when a step waits for answers, wait for them (12fa respond in another shell) and go on")
	fs.DurationVar(&o.waitTimeout, "timeout", 0, "with --wait, give up waiting after this long (the run stays resumable)")
	o.outputFlags.AddFlags(fs)
}

// outputFlags say how a command that runs steps reports.
type outputFlags struct {
	json  bool
	quiet bool
}

func (o *outputFlags) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print the result as JSON on stdout, progress on stderr")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the result")
}

func (o *runFlags) options() runtime.RunOptions {
	return runtime.RunOptions{Upgrade: o.upgrade, RerunInterrupted: o.rerunInterrupted, MarkDone: o.markDone, RetryFailed: o.retryFailed,
		Wait: o.wait, WaitTimeout: o.waitTimeout}
}

type runOptions struct {
	runFlags
	newRun   bool
	parallel int
}

func newRunCommand(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [plugin-manifest.toml ...]",
		Short: "Run workflows, or continue their unfinished runs",
		Long: `Run the workflow of a manifest (default: plugin-manifest.toml).

If the newest run of the same manifest did not finish (the process was
killed, the machine lost power), run continues it after its last completed
step; completed steps never run again. Use --new to start a fresh run.

Several manifests run concurrently in this one process (at most --parallel
at a time), each run's steps in order; their journal writes share fsyncs.
The exit code is the most serious of theirs.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"plugin-manifest.toml"}
			}
			ms := make([]*manifest.Manifest, len(args))
			for i, path := range args {
				m, err := manifest.Load(path)
				if err != nil {
					return exitFor(err)
				}
				ms[i] = m
			}
			opts := o.options()
			opts.New = o.newRun
			return execute(cmd, g, &o.outputFlags, len(ms) > 1, func(rt *runtime.Runtime) ([]*runtime.Result, []error) {
				if len(ms) == 1 {
					res, err := rt.Run(cmd.Context(), ms[0], opts)
					return []*runtime.Result{res}, []error{err}
				}
				return rt.RunAll(cmd.Context(), ms, opts, o.parallel)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.newRun, "new", false, "start a new run even if an unfinished one exists")
	cmd.Flags().IntVarP(&o.parallel, "parallel", "p", 0, "with several manifests, how many run at once (default: all)")
	return cmd
}

func newRollbackCommand(g *globalOptions) *cobra.Command {
	o := &outputFlags{}
	cmd := &cobra.Command{
		Use:   "rollback [run-id]",
		Short: "Undo a run: its steps' rollback exports, last completed first (default: the newest run)",
		Long: `Undo a run (saga): call the rollback export named in the manifest of its
failed or interrupted step, then of each completed step in reverse order.
Each rollback is journaled and retried like a step; a rollback that stopped
(crash, failure) continues from where it was.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return execute(cmd, g, o, false, func(rt *runtime.Runtime) ([]*runtime.Result, []error) {
				res, err := rt.Rollback(cmd.Context(), id)
				return []*runtime.Result{res}, []error{err}
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newResumeCommand(g *globalOptions) *cobra.Command {
	o := &runFlags{}
	cmd := &cobra.Command{
		Use:   "resume [run-id]",
		Short: "Continue an interrupted run (default: the newest unfinished one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return execute(cmd, g, &o.outputFlags, false, func(rt *runtime.Runtime) ([]*runtime.Result, []error) {
				res, err := rt.Resume(cmd.Context(), id, o.options())
				return []*runtime.Result{res}, []error{err}
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// execute opens a runtime, runs fn with progress output, prints the results
// and maps errors to exit codes. With several runs, progress lines name
// their run.
func execute(cmd *cobra.Command, g *globalOptions, o *outputFlags, many bool, fn func(*runtime.Runtime) ([]*runtime.Result, []error)) error {
	progress := g.stdout
	if o.json {
		progress = g.stderr
	}
	if o.quiet {
		progress = io.Discard
	}
	p := &printer{w: progress, many: many, steps: map[string]int{}}
	if !o.json && !o.quiet && isTerminal(g.stdout) {
		p.startLive()
		defer p.stopLive()
	}
	cfg, err := g.runtimeConfig(p.event)
	if err != nil {
		return exitFor(err)
	}
	rt, err := runtime.New(cmd.Context(), cfg)
	if err != nil {
		return exitFor(err)
	}
	results, errs := fn(rt)
	closeErr := rt.Close(cmd.Context())
	if o.json {
		var out any = results
		if !many {
			out = results[0]
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return exitFor(err)
		}
	}
	var worst error
	for i, err := range errs {
		if err == nil {
			continue
		}
		if many {
			fmt.Fprintf(g.stderr, "12fa: %s: %v\n", cmd.Flags().Arg(i), err)
		}
		if worst == nil || exitCode(exitFor(err)) > exitCode(worst) {
			worst = exitFor(err)
		}
	}
	if worst != nil {
		if many {
			return &exitError{code: exitCode(worst)} // each error is printed above
		}
		return worst
	}
	if closeErr != nil {
		return exitFor(closeErr)
	}
	if !o.json {
		for _, res := range results {
			marked := ""
			if res.MarkedDone > 0 {
				marked = fmt.Sprintf(", %d marked done without running", res.MarkedDone)
			}
			fmt.Fprintf(progress, "run %s %s: %d ran, %d replayed from the journal%s\n", res.RunID, res.Status, res.Ran, res.Replayed, marked)
		}
	}
	return nil
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

const maxShownOutput = 400
