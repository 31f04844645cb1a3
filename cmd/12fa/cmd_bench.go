package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/12fa/12fa/bench"
	"github.com/12fa/12fa/internal/atomicfile"
)

type benchOptions struct {
	dir      string
	examples string
	out      string
	quick    bool
}

func (o *benchOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "bench-dir", ".12fa-bench", "directory to measure (on the disk whose fsync matters); emptied first")
	fs.StringVar(&o.examples, "examples", "plugins/examples", "directory of the example plugins (wat/noop.wasm, gonoop/gonoop.wasm)")
	fs.StringVar(&o.out, "out", "", "also write the report as JSON to this file")
	fs.BoolVar(&o.quick, "quick", false, "small sizes, to check the harness (numbers are not comparable)")
}

func newBenchCommand(g *globalOptions) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure durable-step speed against this disk's fsync floor",
		Long: `Measure, on one directory in one run: the fsync floor; W1, one run of
1000 no-op steps (WAT and Go plugins); W2, 200 runs × 10 steps at once; W3,
a 1000-step run killed half-way and resumed in a new process; cold start
with and without a compile cache; flatness over 10,000 steps.`,
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
			cfg := bench.Config{Dir: dir, Binary: self, Progress: g.stderr,
				SmallPlugin: filepath.Join(ex, "wat", "noop.wasm"), GoPlugin: filepath.Join(ex, "gonoop", "gonoop.wasm"),
				HTTPPlugin: filepath.Join(ex, "wat", "httploop.wasm"), FetchPlugin: filepath.Join(ex, "fetch", "fetch.wasm")}
			if o.quick {
				cfg.Steps, cfg.FlatSteps, cfg.W2Runs, cfg.W2Steps, cfg.FloorOps = 100, 400, 20, 5, 100
			}
			rep, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return exitFor(err)
			}
			rep.WriteTable(g.stdout)
			if o.out != "" {
				b, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				if err := atomicfile.Write(o.out, append(b, '\n'), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "\nwrote %s\n", o.out)
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
