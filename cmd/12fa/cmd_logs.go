package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/progress"
	"github.com/12fa/12fa/runtime"
)

func newLogsCommand(g *globalOptions) *cobra.Command {
	var follow, asJSON, stats bool
	cmd := &cobra.Command{
		Use:   "logs [run-id]",
		Short: "Show the progress log (.12fa/progress.jsonl): every action, and the steps' own log lines",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.projectDir()
			if err != nil {
				return err
			}
			run := ""
			if len(args) == 1 {
				run = args[0]
			}
			// read returns the entries after off (all of them first), from
			// .12fa/progress.jsonl or, with --store, the database's copy of
			// every machine's.
			path := runtime.ProgressPath(dir)
			read := func(off int64, first bool) ([]progress.Entry, int64, error) {
				if first {
					return progress.ReadAll(path)
				}
				return progress.Read(path, off)
			}
			if g.store != "" {
				st, err := g.pgStore(cmd, "logs")
				if err != nil {
					return exitFor(err)
				}
				defer st.Close()
				read = func(off int64, _ bool) ([]progress.Entry, int64, error) { return st.Progress(cmd.Context(), run, off) }
			}
			entries, off, err := read(0, true)
			if err != nil {
				return exitFor(err)
			}
			if stats {
				if run == "" { // the latest session
					for i := len(entries) - 1; i >= 0 && run == ""; i-- {
						run = entries[i].Session
					}
				}
				st := progress.Summarize(entries, run)
				if asJSON {
					return json.NewEncoder(g.stdout).Encode(st)
				}
				fmt.Fprintf(g.stdout, "session %s: actions %d, successes %d, failures %d, success rate %.0f%%, total duration %s\n",
					run, st.Actions, st.Successes, st.Failures, 100*st.SuccessRate, time.Duration(st.DurationMS*float64(time.Millisecond)).Round(time.Millisecond))
				return nil
			}
			show := func(es []progress.Entry) {
				for _, e := range es {
					if run != "" && e.Session != run {
						continue
					}
					printEntry(g.stdout, e, asJSON)
				}
			}
			show(entries)
			for follow {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(200 * time.Millisecond):
				}
				var more []progress.Entry
				if more, off, err = read(off, false); err != nil {
					return exitFor(err)
				}
				show(more)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new entries (Ctrl-C stops)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print entries as JSON lines")
	cmd.Flags().BoolVar(&stats, "stats", false, "print the session's stats: actions, successes, failures, success rate, total duration")
	return cmd
}

func printEntry(w io.Writer, e progress.Entry, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(e)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %-8s", e.Time.Local().Format("15:04:05.000"), termsafe.Text(e.Session), termsafe.Text(e.Phase))
	if e.Step != "" {
		fmt.Fprintf(&b, " %s", termsafe.Text(e.Step))
	}
	fmt.Fprintf(&b, " %s", termsafe.Text(e.Action))
	if e.Result != "" {
		fmt.Fprintf(&b, " %s", termsafe.Text(e.Result))
	}
	if e.DurationMS > 0 {
		fmt.Fprintf(&b, " (%s)", time.Duration(e.DurationMS*float64(time.Millisecond)).Round(10*time.Microsecond))
	}
	if e.Details != "" {
		fmt.Fprintf(&b, ": %s", termsafe.Text(e.Details))
	}
	fmt.Fprintln(w, b.String())
}
