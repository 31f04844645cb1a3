package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
)

// runFlags are the options run and resume share.
type runFlags struct {
	upgrade          bool
	rerunInterrupted bool
	markDone         bool
	retryFailed      bool
	json             bool
	quiet            bool
}

func (o *runFlags) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.upgrade, "upgrade", false, "accept plugins that changed since the run started")
	fs.BoolVar(&o.rerunInterrupted, "rerun-interrupted", false, "run an interrupted non-idempotent step again")
	fs.BoolVar(&o.markDone, "mark-done", false, "complete an interrupted non-idempotent step without running it (output null)")
	fs.BoolVar(&o.retryFailed, "retry-failed", false, "continue a failed run from its failed step")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON on stdout, progress on stderr")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the result")
}

func (o *runFlags) options() runtime.RunOptions {
	return runtime.RunOptions{Upgrade: o.upgrade, RerunInterrupted: o.rerunInterrupted, MarkDone: o.markDone, RetryFailed: o.retryFailed}
}

type runOptions struct {
	runFlags
	newRun bool
}

func newRunCommand(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [plugin-manifest.toml]",
		Short: "Run a workflow, or continue its unfinished run",
		Long: `Run the workflow of a manifest (default: plugin-manifest.toml).

If the newest run of the same manifest did not finish (the process was
killed, the machine lost power), run continues it after its last completed
step; completed steps never run again. Use --new to start a fresh run.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "plugin-manifest.toml"
			if len(args) == 1 {
				path = args[0]
			}
			m, err := manifest.Load(path)
			if err != nil {
				return exitFor(err)
			}
			opts := o.options()
			opts.New = o.newRun
			return execute(cmd, g, &o.runFlags, func(rt *runtime.Runtime) (*runtime.Result, error) {
				return rt.Run(cmd.Context(), m, opts)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.newRun, "new", false, "start a new run even if an unfinished one exists")
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
			return execute(cmd, g, o, func(rt *runtime.Runtime) (*runtime.Result, error) {
				return rt.Resume(cmd.Context(), id, o.options())
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// execute opens a runtime, runs fn with progress output, prints the result
// and maps errors to exit codes.
func execute(cmd *cobra.Command, g *globalOptions, o *runFlags, fn func(*runtime.Runtime) (*runtime.Result, error)) error {
	progress := g.stdout
	if o.json {
		progress = g.stderr
	}
	if o.quiet {
		progress = io.Discard
	}
	p := &printer{w: progress}
	cfg, err := g.runtimeConfig(p.event)
	if err != nil {
		return exitFor(err)
	}
	rt, err := runtime.New(cmd.Context(), cfg)
	if err != nil {
		return exitFor(err)
	}
	res, runErr := fn(rt)
	closeErr := rt.Close(cmd.Context())
	if res != nil && o.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return exitFor(err)
		}
	}
	if runErr != nil {
		return exitFor(runErr)
	}
	if closeErr != nil {
		return exitFor(closeErr)
	}
	if res != nil && !o.json {
		marked := ""
		if res.MarkedDone > 0 {
			marked = fmt.Sprintf(", %d marked done without running", res.MarkedDone)
		}
		fmt.Fprintf(progress, "run %s %s: %d ran, %d replayed from the journal%s\n", res.RunID, res.Status, res.Ran, res.Replayed, marked)
	}
	return nil
}

// printer writes human progress lines.
type printer struct {
	w     io.Writer
	steps int
}

const maxShownOutput = 400

func (p *printer) event(e runtime.Event) {
	switch e.Type {
	case runtime.EventPluginsLoaded:
		if e.Duration > 500*time.Millisecond {
			fmt.Fprintf(p.w, "compiled %d plugins in %s (cached for the next run)\n", e.Steps, e.Duration.Round(time.Millisecond))
		}
	case runtime.EventRunStarted, runtime.EventRunResumed:
		p.steps = e.Steps
		verb := "started"
		if e.Type == runtime.EventRunResumed {
			verb = "resumed"
		}
		fmt.Fprintf(p.w, "run %s %s: workflow %q, %d steps\n", e.Run, verb, e.Workflow, e.Steps)
	case runtime.EventStepReplayed:
		fmt.Fprintf(p.w, "[%d/%d] %s: completed earlier, output replayed: %s\n", e.Index+1, p.steps, e.Step, shorten(e.Output))
	case runtime.EventStepStarted:
		if e.Attempt > 1 {
			fmt.Fprintf(p.w, "[%d/%d] %s: attempt %d\n", e.Index+1, p.steps, e.Step, e.Attempt)
		}
	case runtime.EventStepLog:
		fmt.Fprintf(p.w, "    %s %s: %s\n", e.Step, logTag(e), e.Log.Message)
	case runtime.EventStepCompleted:
		fmt.Fprintf(p.w, "[%d/%d] %s: ok in %s: %s\n", e.Index+1, p.steps, e.Step, e.Duration.Round(10*time.Microsecond), shorten(e.Output))
	case runtime.EventStepMarkedDone:
		fmt.Fprintf(p.w, "[%d/%d] %s: marked done by hand, not run again (output null)\n", e.Index+1, p.steps, e.Step)
	case runtime.EventStepFailed:
		fmt.Fprintf(p.w, "[%d/%d] %s: FAILED after %s: %v\n", e.Index+1, p.steps, e.Step, e.Duration.Round(10*time.Microsecond), e.Err)
	}
}

func logTag(e runtime.Event) string {
	if e.Log.Source != "log" {
		return e.Log.Source
	}
	return e.Log.Level.String()
}

func shorten(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxShownOutput {
		return fmt.Sprintf("%s… (%d bytes)", s[:maxShownOutput], len(s))
	}
	return s
}
