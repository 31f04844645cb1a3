// Command 12fa runs long, resumable agent workflows whose steps are
// sandboxed WebAssembly plugins.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/12fa/12fa/internal/termsafe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand(os.Stdin, os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
	reportPeakRSS()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "12fa:", errText(ee.err))
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "12fa:", errText(err))
	os.Exit(exitFailure)
}

// reportPeakRSS writes this process's peak RSS (VmHWM, in KiB) to the file
// $TWELVEFA_PEAK_RSS_FILE names, for `12fa bench --scale`: the rusage a
// parent reads counts the parent's own memory, copied at exec (Linux only).
func reportPeakRSS() {
	path := os.Getenv("TWELVEFA_PEAK_RSS_FILE")
	if path == "" {
		return
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			_ = os.WriteFile(path, []byte(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))), 0o644)
		}
	}
}

// errText is an error as a person sees it: on one line, terminal-safe
// (it may carry a guest's error message).
func errText(err error) string {
	if err == nil {
		return ""
	}
	return termsafe.Text(err.Error())
}
