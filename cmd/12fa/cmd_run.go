package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/12fa/12fa/internal/termsafe"
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

// printer writes human progress lines. Events of concurrent runs arrive
// from several goroutines.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	many  bool
	steps map[string]int // by run

	// live keeps a status line at the bottom of a terminal: the step
	// running, its attempt and the time since it started.
	live    bool
	status  string
	started time.Time
	stop    chan struct{}
}

// startLive redraws the status line twice a second until stopLive.
func (p *printer) startLive() {
	p.live, p.stop = true, make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			}
		}
	}()
}

func (p *printer) stopLive() {
	if !p.live {
		return
	}
	close(p.stop)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K")
	p.status = ""
}

// draw writes the status line over itself (mu held).
func (p *printer) draw() {
	if !p.live || p.status == "" {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s", p.status, time.Since(p.started).Round(100*time.Millisecond))
}

const maxShownOutput = 400

func (p *printer) event(e runtime.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	steps := p.steps[e.Run]
	switch e.Type {
	case runtime.EventPluginsLoaded:
		if e.Duration > 500*time.Millisecond {
			line = fmt.Sprintf("compiled %d plugins in %s (cached for the next run)\n", e.Steps, e.Duration.Round(time.Millisecond))
		}
	case runtime.EventRunStarted, runtime.EventRunResumed:
		p.steps[e.Run] = e.Steps
		verb := "started"
		if e.Type == runtime.EventRunResumed {
			verb = "resumed"
		}
		line = fmt.Sprintf("run %s %s: workflow %q, %d steps\n", e.Run, verb, e.Workflow, e.Steps)
	case runtime.EventStepReplayed:
		line = fmt.Sprintf("[%d/%d] %s: completed earlier, output replayed: %s\n", e.Index+1, steps, e.Step, shorten(e.Output))
	case runtime.EventStepStarted:
		if e.Attempt > 1 {
			line = fmt.Sprintf("[%d/%d] %s: attempt %d\n", e.Index+1, steps, e.Step, e.Attempt)
		}
	case runtime.EventStepLog:
		line = fmt.Sprintf("    %s %s: %s\n", e.Step, logTag(e), termsafe.Text(e.Log.Message))
	case runtime.EventHostCall:
		line = fmt.Sprintf("    %s %s: %s\n", e.Step, e.Call.Kind, termsafe.Text(e.Call.String()))
	case runtime.EventStepCompleted:
		line = fmt.Sprintf("[%d/%d] %s: ok in %s: %s\n", e.Index+1, steps, e.Step, e.Duration.Round(10*time.Microsecond), shorten(e.Output))
	case runtime.EventStepMarkedDone:
		line = fmt.Sprintf("[%d/%d] %s: marked done by hand, not run again (output null)\n", e.Index+1, steps, e.Step)
	case runtime.EventStepWaiting:
		var b strings.Builder
		if e.Step == "" {
			fmt.Fprintf(&b, "[inputs] waiting for %d answer(s) before the first step:\n", len(e.Questions))
		} else {
			fmt.Fprintf(&b, "[%d/%d] %s: waiting for %d answer(s):\n", e.Index+1, steps, e.Step, len(e.Questions))
		}
		for _, q := range e.Questions {
			opts := ""
			if len(q.Options) > 0 {
				opts = " [" + termsafe.Text(strings.Join(q.Options, "/")) + "]"
			}
			fmt.Fprintf(&b, "    %s  %s%s\n", q.ID, termsafe.Text(q.Question), opts)
		}
		b.WriteString("    answer with: 12fa respond <id> <answer>; then 12fa resume (with --wait, this run goes on by itself)\n")
		line = b.String()
	case runtime.EventRollbackStarted:
		line = fmt.Sprintf("[%d/%d] %s: rolling back (attempt %d)\n", e.Index+1, steps, e.Step, e.Attempt)
	case runtime.EventRollbackCompleted:
		line = fmt.Sprintf("[%d/%d] %s: rolled back in %s\n", e.Index+1, steps, e.Step, e.Duration.Round(10*time.Microsecond))
	case runtime.EventRollbackFailed:
		line = fmt.Sprintf("[%d/%d] %s: ROLLBACK FAILED: %s\n", e.Index+1, steps, e.Step, errText(e.Err))
		if e.RetryIn > 0 {
			line = fmt.Sprintf("[%d/%d] %s: rollback attempt %d failed: %s; retrying in %s\n", e.Index+1, steps, e.Step, e.Attempt, errText(e.Err), e.RetryIn.Round(time.Millisecond))
		}
	case runtime.EventRunRolledBack:
		line = fmt.Sprintf("run %s rolled back\n", e.Run)
	case runtime.EventStepFailed:
		if e.RetryIn > 0 {
			line = fmt.Sprintf("[%d/%d] %s: attempt %d failed after %s: %s; retrying in %s\n", e.Index+1, steps, e.Step, e.Attempt,
				e.Duration.Round(10*time.Microsecond), errText(e.Err), e.RetryIn.Round(time.Millisecond))
		} else {
			line = fmt.Sprintf("[%d/%d] %s: FAILED after %s: %s\n", e.Index+1, steps, e.Step, e.Duration.Round(10*time.Microsecond), errText(e.Err))
		}
	}
	if p.live {
		switch e.Type {
		case runtime.EventStepStarted, runtime.EventRollbackStarted:
			p.status = fmt.Sprintf("[%d/%d] %s: running, attempt %d,", e.Index+1, steps, e.Step, e.Attempt)
			p.started = time.Now()
		case runtime.EventStepCompleted, runtime.EventStepFailed, runtime.EventStepWaiting,
			runtime.EventRollbackCompleted, runtime.EventRollbackFailed, runtime.EventRunCompleted, runtime.EventRunFailed:
			p.status = ""
		}
	}
	if line != "" && p.many && e.Run != "" && !strings.HasPrefix(line, "run ") {
		line = e.Run + " " + line
	}
	if p.live {
		fmt.Fprint(p.w, "\r\033[K") // the status line gives way to the event
	}
	fmt.Fprint(p.w, line)
	p.draw()
}

func logTag(e runtime.Event) string {
	if e.Log.Source != "log" {
		return e.Log.Source
	}
	return e.Log.Level.String()
}

// shorten shows the start of an output, terminal-safe.
func shorten(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxShownOutput {
		return fmt.Sprintf("%s… (%d bytes)", termsafe.Text(strings.ToValidUTF8(s[:maxShownOutput], "")), len(s))
	}
	return termsafe.Text(s)
}

// errText is an error as a person sees it: on one line, terminal-safe
// (it may carry a guest's error message).
func errText(err error) string {
	if err == nil {
		return ""
	}
	return termsafe.Text(err.Error())
}
