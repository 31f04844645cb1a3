// Command dbos-bench measures DBOS Transact Go on a PostgreSQL server, the
// way `12fa bench` measures 12fa's PostgreSQL store, so that both run in
// the same sitting on the same server: W1, one workflow of -steps no-op
// steps (time per step); W2, -runs workflows of -run-steps no-op steps
// started at once (steps per second). It prints one JSON object.
//
// It is a module of its own, so that 12fa does not depend on DBOS; `make
// bench` builds it (the Go module proxy must be reachable).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
)

type result struct {
	Version       string  `json:"version"`
	W1Steps       int     `json:"w1_steps"`
	W1MedianUS    float64 `json:"w1_per_step_median_us"`
	W1MeanUS      float64 `json:"w1_per_step_mean_us"`
	W2Runs        int     `json:"w2_runs"`
	W2Steps       int     `json:"w2_steps"`
	W2Seconds     float64 `json:"w2_wall_s"`
	W2StepsPerSec float64 `json:"w2_steps_per_sec"`
}

func noop(context.Context) (int, error) { return 1, nil }

func main() {
	url := flag.String("url", "", "PostgreSQL database (postgres://…)")
	steps := flag.Int("steps", 1000, "W1: steps of the one workflow")
	runs := flag.Int("runs", 200, "W2: workflows at once")
	runSteps := flag.Int("run-steps", 10, "W2: steps of each")
	flag.Parse()
	if err := run(*url, *steps, *runs, *runSteps); err != nil {
		fmt.Fprintln(os.Stderr, "dbos-bench:", err)
		os.Exit(1)
	}
}

func run(url string, steps, runs, runSteps int) error {
	ctx, err := dbos.NewContext(context.Background(), dbos.Config{DatabaseURL: url, AppName: "twelvefa-bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var stamps []time.Time
	w1 := func(c dbos.Context, n int) (int, error) {
		for range n {
			if _, err := dbos.RunAsStep(c, noop); err != nil {
				return 0, err
			}
			mu.Lock()
			stamps = append(stamps, time.Now())
			mu.Unlock()
		}
		return n, nil
	}
	w2 := func(c dbos.Context, n int) (int, error) {
		for range n {
			if _, err := dbos.RunAsStep(c, noop); err != nil {
				return 0, err
			}
		}
		return n, nil
	}
	dbos.RegisterWorkflow(ctx, w1)
	dbos.RegisterWorkflow(ctx, w2)
	if err := dbos.Launch(ctx); err != nil {
		return err
	}
	defer dbos.Shutdown(ctx, 5*time.Second)

	res := result{Version: "v1.8.0", W1Steps: steps, W2Runs: runs, W2Steps: runs * runSteps}
	start := time.Now()
	h, err := dbos.RunWorkflow(ctx, w1, steps)
	if err != nil {
		return err
	}
	if _, err := h.GetResult(); err != nil {
		return err
	}
	total := time.Since(start)
	var ds []float64
	for i := 1; i < len(stamps); i++ {
		ds = append(ds, float64(stamps[i].Sub(stamps[i-1]).Nanoseconds())/1000)
	}
	slices.Sort(ds)
	if len(ds) > 0 {
		res.W1MedianUS = ds[len(ds)/2]
	}
	res.W1MeanUS = float64(total.Nanoseconds()) / 1000 / float64(steps)

	start = time.Now()
	hs := make([]dbos.WorkflowHandle[int], runs)
	for i := range hs {
		if hs[i], err = dbos.RunWorkflow(ctx, w2, runSteps); err != nil {
			return err
		}
	}
	for _, h := range hs {
		if _, err := h.GetResult(); err != nil {
			return err
		}
	}
	wall := time.Since(start)
	res.W2Seconds = wall.Seconds()
	res.W2StepsPerSec = float64(res.W2Steps) / wall.Seconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}
