package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/bench"
)

type benchOptions struct {
	dir      string
	examples string
	out      string
	quick    bool
	scale    bool
	pg       string
	dbos     string
}

func (o *benchOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "bench-dir", ".12fa-bench", "directory to measure (on the disk whose fsync matters); emptied first")
	fs.StringVar(&o.examples, "examples", "plugins/examples", "directory of the example plugins (wat/noop.wasm, gonoop/gonoop.wasm)")
	fs.StringVar(&o.out, "out", "", "also write the report as JSON to this file")
	fs.BoolVar(&o.quick, "quick", false, "small sizes, to check the harness (numbers are not comparable)")
	fs.StringVar(&o.pg, "pg", "", "also measure the PostgreSQL store on this server (postgres://…, a user that may create databases; default --store when it is one)")
	fs.StringVar(&o.dbos, "dbos", "", "with --pg, also run this build of the DBOS harness (internal/bench/dbos) on the same server")
	fs.BoolVar(&o.scale, "scale", false, "build stores of 1,000 runs × 1,000 steps and 100,000 runs × 10 steps and measure run and status on them beside an empty store (takes minutes)")
}

func newBenchCommand(g *globalOptions) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure durable-step speed against this disk's fsync floor",
		Long: `Measure, on one directory in one run: the fsync floor; W1, one run of
1000 no-op steps (WAT and Go plugins); W2, 200 runs × 10 steps at once; W3,
a 1000-step run killed half-way and resumed in a new process; cold start
with and without a compile cache; flatness over 10,000 steps.

With --scale, instead: build a store of 1,000 runs × 1,000 steps and one of
100,000 runs × 10 steps (a million steps each), and measure on each, beside
an empty store, a new 1,000-step run, status, status of one run and
status --json --all, each in a process of its own (time and peak RSS).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := filepath.Abs(o.dir)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			ex, err := filepath.Abs(o.examples)
			if err != nil {
				return err
			}
			if o.scale {
				sc := bench.ScaleConfig{Dir: dir, Binary: self, SmallPlugin: filepath.Join(ex, "wat", "noop.wasm"), Progress: g.stderr}
				if o.quick {
					sc.Stores, sc.RunSteps = []bench.StoreShape{{Runs: 100, Steps: 100}, {Runs: 2000, Steps: 10}}, 100
				}
				rep, err := bench.Scale(cmd.Context(), sc)
				if err != nil {
					return exitFor(err)
				}
				rep.WriteTable(g.stdout)
				return writeJSON(g, o.out, rep)
			}
			cfg := bench.Config{Dir: dir, Binary: self, Progress: g.stderr,
				SmallPlugin: filepath.Join(ex, "wat", "noop.wasm"), GoPlugin: filepath.Join(ex, "gonoop", "gonoop.wasm"),
				HTTPPlugin: filepath.Join(ex, "wat", "httploop.wasm"), FetchPlugin: filepath.Join(ex, "fetch", "fetch.wasm"),
				PG: o.pg, DBOS: o.dbos, EffectPlugin: filepath.Join(ex, "effect", "effect.wasm")}
			if cfg.PG == "" {
				cfg.PG = g.store
			}
			if o.quick {
				cfg.Steps, cfg.FlatSteps, cfg.W2Runs, cfg.W2Steps, cfg.FloorOps = 100, 400, 20, 5, 100
			}
			rep, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return exitFor(err)
			}
			rep.WriteTable(g.stdout)
			if err := writeJSON(g, o.out, rep); err != nil {
				return err
			}
			if len(rep.Errors) > 0 {
				return &exitError{code: exitFailure}
			}
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// writeJSON writes a report as JSON to path, when set.
func writeJSON(g *globalOptions, path string, rep any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "\nwrote %s\n", path)
	return nil
}
