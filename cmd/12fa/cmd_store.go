package main

import (
	"bufio"
	"errors"
	"fmt"

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
	return store
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
