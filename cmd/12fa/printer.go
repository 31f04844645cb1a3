package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/runtime"
)

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
