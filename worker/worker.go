// Package worker runs the queued runs of a PostgreSQL store: `12fa
// worker` on any number of machines takes runs from one queue, executes
// them with the runtime, and hands them back (../shared/research/
// scale-out.md has the design). Submit enqueues runs with everything a
// worker needs (the manifest and its plugins, content-addressed in the
// database).
//
// A worker's leases are kept by its store's heartbeats. When they stop
// being acknowledged, the store gives its leases up at its local
// deadline and the worker cancels the steps it was running; another
// worker takes the runs over once the lease expired, and continues each
// at its first step not completed.
//
// worker imports runtime, pgstore, manifest and state.
package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/singleflight"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/pgstore"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// Submit enqueues count runs of the workflow m (read from its manifest
// file) on st, with its bundle, and returns their ids.
func Submit(ctx context.Context, st *pgstore.Store, m *manifest.Manifest, count int, sharedPaths bool) ([]string, error) {
	if count < 1 {
		return nil, fmt.Errorf("submit: --count %d: at least one run", count)
	}
	b, blobs, err := NewBundle(m, sharedPaths)
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	decl := make([]state.StepDecl, len(m.Steps))
	for i := range m.Steps {
		decl[i] = state.StepDecl{ID: m.Steps[i].ID, Plugin: b.Files[cleanRel(m.Steps[i].Plugin)]}
	}
	recs := make([]*state.Record, count)
	ids := make([]string, count)
	for i := range recs {
		ids[i] = runtime.NewRunID(time.Now())
		recs[i] = &state.Record{Type: state.EventRunStarted, Run: ids[i], Workflow: m.Workflow.Name, Manifest: m.Path, Steps: decl}
	}
	if err := st.Submit(ctx, recs, blobs[len(blobs)-1].SHA256(), blobs); err != nil {
		return nil, err
	}
	return ids, nil
}

// Config configures a worker.
type Config struct {
	// Store is a worker's store (pgstore.Config.Worker set); Runtime runs
	// on it (runtime.Config.Store).
	Store   *pgstore.Store
	Runtime *runtime.Runtime
	// BundleDir is where submitted runs' manifests and plugins are laid
	// out.
	BundleDir string
	// Concurrency is how many runs execute at once (1 when < 1).
	Concurrency int
	// Poll is how often the queue is read without a notification (1 s
	// when 0).
	Poll time.Duration
	// Drain bounds how long, once Run's context is done, the runs under
	// way may go on before their steps are canceled (30 s when 0; < 0:
	// cancel them at once).
	Drain time.Duration
	// Logger receives what the worker does: a line per run it takes and
	// per run it hands back.
	Logger hclog.Logger
	// OnRun, when set, sees each run's outcome.
	OnRun func(q pgstore.Queued, res *runtime.Result, err error)
}

// Run takes runs from the queue and executes them until ctx is done,
// then stops taking runs, lets those under way go on for cfg.Drain,
// cancels what is left (each goes back to the queue, resumable) and
// returns.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Drain == 0 {
		cfg.Drain = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	w := &worker{cfg: cfg, manifests: map[string]*manifest.Manifest{}, freed: make(chan struct{}, 1)}
	// Runs go on past ctx until the drain ends.
	runs, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	wake := cfg.Store.Wake()
	poll := time.NewTicker(cfg.Poll)
	defer poll.Stop()
	var wg sync.WaitGroup
	active := 0
	for ctx.Err() == nil {
		if free := cfg.Concurrency - active; free > 0 {
			qs, err := cfg.Store.Dequeue(ctx, free)
			if err != nil && ctx.Err() == nil {
				cfg.Logger.Warn("take runs", "error", err)
			}
			for _, q := range qs {
				active++
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.execute(runs, q)
					w.done()
				}()
			}
			if len(qs) == free {
				continue // the queue may hold more
			}
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-poll.C:
		case <-w.freed:
			active = w.reap(active)
		}
		active = w.reap(active)
	}
	cfg.Logger.Info("draining", "runs", active, "for", cfg.Drain)
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	if cfg.Drain > 0 {
		select {
		case <-finished:
		case <-time.After(cfg.Drain):
		}
	}
	cancelRuns()
	<-finished
	return nil
}

type worker struct {
	cfg Config

	mu        sync.Mutex
	manifests map[string]*manifest.Manifest // by bundle
	laying    singleflight.Group
	ended     int
	freed     chan struct{}
}

func (w *worker) done() {
	w.mu.Lock()
	w.ended++
	w.mu.Unlock()
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

// reap subtracts the runs that ended since the last call from active.
func (w *worker) reap(active int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	active -= w.ended
	w.ended = 0
	return active
}

// execute runs q to its end (or until it waits, is interrupted, or its
// lease is lost).
func (w *worker) execute(ctx context.Context, q pgstore.Queued) {
	log := w.cfg.Logger.With("run", q.ID)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := w.cfg.Store.Lost(q.ID)
	go func() {
		select {
		case <-lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	m, err := w.manifest(ctx, q)
	if err != nil {
		if pgstore.Transient(err) {
			log.Warn("run handed back: its workflow could not be read now", "error", err)
			w.cfg.Store.Release(q.ID)
		} else {
			log.Error("run parked: its workflow cannot be read", "error", err)
			w.cfg.Store.Park(q.ID)
		}
		if w.cfg.OnRun != nil {
			w.cfg.OnRun(q, nil, err)
		}
		return
	}
	log.Info("run taken", "workflow", m.Workflow.Name, "takeovers", q.Takeovers)
	res, err := w.cfg.Runtime.Run(ctx, m, runtime.RunOptions{RunID: q.ID})
	select {
	case <-lost:
		if err == nil {
			err = pgstore.ErrLeaseLost
		}
		log.Warn("run given up: its lease was lost", "error", err)
	default:
		switch {
		case err == nil:
			log.Info("run ended", "status", res.Status, "ran", res.Ran, "replayed", res.Replayed)
		case errors.Is(err, runtime.ErrWaiting):
			log.Info("run parked: it waits for answers", "error", err)
		case errors.Is(err, runtime.ErrCanceled):
			log.Info("run handed back", "error", err)
		default:
			log.Warn("run stopped", "error", err)
		}
	}
	if w.cfg.OnRun != nil {
		w.cfg.OnRun(q, res, err)
	}
}

// manifest returns the workflow of a queued run: its bundle's, laid out
// once per worker, or for a run started in the foreground the manifest
// file it names (when this machine has it).
func (w *worker) manifest(ctx context.Context, q pgstore.Queued) (*manifest.Manifest, error) {
	if q.Bundle == "" {
		run, err := w.cfg.Store.Run(q.ID)
		if err != nil {
			return nil, err
		}
		if run.Manifest == "" {
			return nil, errors.New("the run was built in code")
		}
		return manifest.Load(run.Manifest)
	}
	w.mu.Lock()
	m, ok := w.manifests[q.Bundle]
	w.mu.Unlock()
	if ok {
		return m, nil
	}
	// The runs of one bundle taken at once lay it out once.
	v, err, _ := w.laying.Do(q.Bundle, func() (any, error) {
		m, err := materialize(ctx, w.cfg.BundleDir, q.Bundle, w.cfg.Store)
		if err == nil {
			w.mu.Lock()
			w.manifests[q.Bundle] = m
			w.mu.Unlock()
		}
		return m, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*manifest.Manifest), nil
}
