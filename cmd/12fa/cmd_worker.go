package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/internal/layout"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/pgstore"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/worker"
)

func newSubmitCommand(g *globalOptions) *cobra.Command {
	var count int
	var shared, asJSON bool
	cmd := &cobra.Command{
		Use:   "submit <plugin-manifest.toml>",
		Short: "Queue runs of a workflow for `12fa worker`s on any machine (--store postgres://…)",
		Long: `Queue COUNT new runs of the workflow for the workers sharing the --store
database. The manifest and its plugins go into the database, named by their
sha256, so that a worker on another machine needs nothing but the
connection string. Prints the run ids, one per line.

Plugins must be named relative to the manifest. A step granted host
directories (allow.paths, allow.write_paths, and so commands) is refused
unless --shared-paths says every worker sees them at the same place.
Secrets are read from each worker's environment.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manifest.Load(args[0])
			if err != nil {
				return exitFor(err)
			}
			st, err := g.pgStore(cmd, "submit")
			if err != nil {
				return exitFor(err)
			}
			defer st.Close()
			ids, err := worker.Submit(cmd.Context(), st, m, count, shared)
			if err != nil {
				return exitFor(err)
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{"workflow": m.Workflow.Name, "runs": ids})
			}
			for _, id := range ids {
				fmt.Fprintln(g.stdout, id)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&count, "count", 1, "how many runs to queue")
	cmd.Flags().BoolVar(&shared, "shared-paths", false, "the steps' host directories are at the same place on every worker")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {workflow, runs} as JSON")
	return cmd
}

func newWorkerCommand(g *globalOptions) *cobra.Command {
	var concurrency int
	var drain time.Duration
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Take queued runs from the --store database and run them, until SIGTERM",
		Long: `Take runs from the queue of the --store database (12fa submit queues them;
a run another worker stopped heartbeating for is queued again), CONCURRENCY
at a time, and run each to its end, until it waits for a person (it then
holds no worker: 12fa respond from any machine queues it again) or fails.

The worker heartbeats every 2s ($TWELVEFA_HEARTBEAT); another worker takes
its runs over 15s ($TWELVEFA_LEASE) after the last one the database saw,
and continues each at its first step not completed. A worker that cannot
reach the database gives its runs up before then and cancels their steps.

On SIGTERM or Ctrl-C it stops taking runs, lets those under way go on for
--drain, then cancels what is left and hands it back to the queue at once.
Manifests and plugins of submitted runs are laid out in DIR/.12fa/bundles.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.store == "" {
				return exitFor(fmt.Errorf("worker works on a PostgreSQL store: pass --store postgres://… (or set $TWELVEFA_STORE)"))
			}
			pc, err := g.pgConfig()
			if err != nil {
				return exitFor(err)
			}
			pc.Worker, pc.Concurrency = true, concurrency
			// Appends share one flush at a time (group commit): the runs
			// need few connections, whatever their number.
			pc.MaxConns = int32(min(concurrency, 12) + 4)
			if f := cmd.Flag("log-level"); f != nil && !f.Changed {
				g.logLevel = "info" // a line per run taken and handed back
			}
			log := g.logger()
			st, err := pgstore.Open(cmd.Context(), pc, log.Named("pgstore"))
			if err != nil {
				return exitFor(err)
			}
			cfg, err := g.engineConfig(nil)
			if err != nil {
				st.Close()
				return exitFor(err)
			}
			cfg.Store = st
			rt, err := runtime.New(cmd.Context(), cfg)
			if err != nil {
				st.Close()
				return exitFor(err)
			}
			defer rt.Close(cmd.Context())
			fmt.Fprintf(g.stderr, "12fa worker: taking runs, %d at a time; SIGTERM drains\n", concurrency)
			return exitFor(worker.Run(cmd.Context(), worker.Config{Store: st, Runtime: rt, Concurrency: concurrency, Drain: drain,
				BundleDir: filepath.Join(cfg.ProjectDir, layout.StoreDir, layout.BundlesDir), Logger: log.Named("worker")}))
		},
	}
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "runs executed at once")
	cmd.Flags().DurationVar(&drain, "drain", 30*time.Second, "on SIGTERM, how long runs under way may go on before they are handed back")
	return cmd
}
