package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/12fa/12fa/runtime"
)

// TestPrinter_LiveStatusLine: on a terminal, a running step shows as a
// status line that the next event's line replaces; off a terminal, plain
// lines only.
func TestPrinter_LiveStatusLine(t *testing.T) {
	events := []runtime.Event{
		{Type: runtime.EventRunStarted, Run: "r", Workflow: "w", Steps: 2},
		{Type: runtime.EventStepStarted, Run: "r", Step: "a", Index: 0, Attempt: 1},
		{Type: runtime.EventStepCompleted, Run: "r", Step: "a", Index: 0, Attempt: 1, Output: []byte(`{}`)},
	}
	var live bytes.Buffer
	p := &printer{w: &live, steps: map[string]int{}}
	p.startLive()
	for _, e := range events {
		p.event(e)
	}
	p.stopLive()
	out := live.String()
	if !strings.Contains(out, "\r\033[K[1/2] a: running, attempt 1,") {
		t.Fatalf("no status line: %q", out)
	}
	if !strings.HasSuffix(out, "\r\033[K") || !strings.Contains(out, "\r\033[K[1/2] a: ok") {
		t.Fatalf("the status line is not cleared: %q", out)
	}

	var plain bytes.Buffer
	p = &printer{w: &plain, steps: map[string]int{}}
	for _, e := range events {
		p.event(e)
	}
	if strings.Contains(plain.String(), "\033") || strings.Count(plain.String(), "\n") != 2 {
		t.Fatalf("plain output: %q", plain.String())
	}
}
