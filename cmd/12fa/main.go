// Command 12fa runs long, resumable agent workflows whose steps are
// sandboxed WebAssembly plugins.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand(os.Stdin, os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
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
