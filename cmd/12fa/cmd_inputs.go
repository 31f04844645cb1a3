package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/runtime"
)

func newInputsCommand(g *globalOptions) *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "inputs",
		Short: "List the questions steps are waiting on (12fa respond answers them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.view(cmd.Context())
			if err != nil {
				return exitFor(err)
			}
			qs, err := v.Questions()
			v.Close()
			if err != nil {
				return exitFor(err)
			}
			var shown []inputs.Question
			for _, q := range qs {
				if all || q.Status == inputs.Pending {
					shown = append(shown, q)
				}
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Questions []inputs.Question `json:"questions"`
				}{shown})
			}
			if len(shown) == 0 {
				fmt.Fprintln(g.stdout, "no questions waiting")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRUN\tSTEP\tAGE\tQUESTION\tOPTIONS\tANSWER")
			for _, q := range shown {
				age := time.Since(q.AskedAt).Round(time.Second)
				answer := q.Answer
				if q.Status == inputs.Superseded {
					answer = "(superseded: nothing waits for it)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termsafe.Text(q.ID), q.Run, q.Step, age,
					termsafe.Text(q.Question), termsafe.Text(strings.Join(q.Options, "/")), termsafe.Text(answer))
			}
			tw.Flush()
			fmt.Fprintln(g.stdout, "\nanswer with: 12fa respond <id> <answer>; then 12fa resume")
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the questions as JSON")
	cmd.Flags().BoolVar(&all, "all", false, "also list answered and superseded questions")
	return cmd
}

func newRespondCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "respond <input-id> <answer>",
		Short: "Answer a question a step asked; the run goes on at its next run or resume",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q inputs.Question
			if g.store == "" {
				dir, err := g.projectDir()
				if err != nil {
					return err
				}
				if q, err = runtime.Respond(dir, args[0], args[1]); err != nil {
					return exitFor(err)
				}
			} else {
				v, err := g.view(cmd.Context())
				if err != nil {
					return exitFor(err)
				}
				q, err = v.Respond(args[0], args[1])
				v.Close()
				if err != nil {
					return exitFor(err)
				}
			}
			next := "12fa resume continues run " + q.Run
			if g.store != "" {
				next = "run " + q.Run + " goes on with the next free worker (or 12fa resume)"
			}
			fmt.Fprintf(g.stdout, "answered %s (%q): %q; %s\n", q.ID, q.Question, q.Answer, next)
			return nil
		},
	}
}
