package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/pgstore"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// pgStore opens the --store database, which these commands need.
func (g *globalOptions) pgStore(cmd *cobra.Command, verb string) (*pgstore.Store, error) {
	if g.store == "" {
		return nil, fmt.Errorf("%s works on a PostgreSQL store: pass --store postgres://… (or set $TWELVEFA_STORE)", verb)
	}
	st, err := g.openStore(cmd.Context())
	if err != nil {
		return nil, err
	}
	return st.(*pgstore.Store), nil
}

func newStoreCommand(g *globalOptions) *cobra.Command {
	store := &cobra.Command{Use: "store", Short: "Manage the PostgreSQL store (--store)"}
	store.AddCommand(&cobra.Command{
		Use:   "migrate",
		Short: "Bring the database's schema to this version's (opening it does too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.pgStore(cmd, "store migrate")
			if err != nil {
				return exitFor(err)
			}
			defer st.Close()
			v, err := st.Version(cmd.Context())
			if err != nil {
				return exitFor(err)
			}
			fmt.Fprintf(g.stdout, "schema at version %d (this 12fa's is %d)\n", v, pgstore.SchemaVersion)
			return nil
		},
	})
	var asJSON bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Check the runs' history: no completed step run again, no gap in a journal, epochs in order",
		Long: `Read every run's records in the --store database and print runs by status and
queue state, takeovers, and the figures a correct history keeps at 0:
completed steps started again, gaps in a run's sequence numbers, records
written under an older lease epoch than one before them. Exits 1 when one
of them is not 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.pgStore(cmd, "store check")
			if err != nil {
				return exitFor(err)
			}
			defer st.Close()
			a, err := st.Check(cmd.Context())
			if err != nil {
				return exitFor(err)
			}
			if asJSON {
				if err := json.NewEncoder(g.stdout).Encode(a); err != nil {
					return err
				}
			} else {
				printAudit(g.stdout, a)
			}
			if a.CompletedRerun+a.Gaps+a.EpochDisorder > 0 {
				return &exitError{exitFailure, errors.New("the history is not correct (see above)")}
			}
			return nil
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print the figures as JSON")
	store.AddCommand(check)
	return store
}

func printAudit(w io.Writer, a *pgstore.Audit) {
	counts := func(m map[string]int) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "runs:                    %s\n", counts(a.Runs))
	fmt.Fprintf(w, "queue:                   %s\n", counts(a.Queue))
	fmt.Fprintf(w, "workers registered:      %d\n", a.Workers)
	fmt.Fprintf(w, "leases taken:            %d\n", a.Claims)
	fmt.Fprintf(w, "takeovers:               %d\n", a.Takeovers)
	fmt.Fprintf(w, "interrupted, run again:  %d\n", a.Interrupted)
	fmt.Fprintf(w, "completed steps re-run:  %d\n", a.CompletedRerun)
	fmt.Fprintf(w, "sequence gaps:           %d\n", a.Gaps)
	fmt.Fprintf(w, "epochs out of order:     %d\n", a.EpochDisorder)
}

func newExportCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "export <run-id>",
		Short: "Write a run's journal from the PostgreSQL store as journal.jsonl lines",
		Long: `Write the records of RUN-ID, kept in the --store database, to standard output
as the file store's journal.jsonl lines, in order: copied into an empty
project's .12fa/journal.jsonl, the run reads there as it does in the database.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.pgStore(cmd, "export")
			if err != nil {
				return exitFor(err)
			}
			defer st.Close()
			lines, err := st.Records(cmd.Context(), args[0])
			if errors.Is(err, state.ErrUnknownRun) {
				err = fmt.Errorf("%w: %q", runtime.ErrRunNotFound, args[0])
			}
			if err != nil {
				return exitFor(err)
			}
			w := bufio.NewWriter(g.stdout)
			for _, l := range lines {
				w.Write(l)
				w.WriteByte('\n')
			}
			return w.Flush()
		},
	}
}
