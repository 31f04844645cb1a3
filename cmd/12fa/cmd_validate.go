package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/manifest"
)

func newValidateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [plugin-manifest.toml ...]",
		Short: "Check a manifest and print every grant of every step",
		Long: `Check a manifest as run would (an error names the file and line) and print
what each step is granted beyond the sandbox's nothing: directories, hosts,
private address ranges, HTTP limits, commands, their environment and
secrets (by name, never a value).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"plugin-manifest.toml"}
			}
			for _, path := range args {
				m, err := manifest.Load(path)
				if err != nil {
					return exitFor(err)
				}
				printGrants(g, m)
			}
			return nil
		},
	}
}

// printGrants lists the grants of m's steps.
func printGrants(g *globalOptions, m *manifest.Manifest) {
	w := g.stdout
	fmt.Fprintf(w, "%s: workflow %q, %d steps: valid\n", m.Path, m.Workflow.Name, len(m.Steps))
	for _, name := range slices.Sorted(maps.Keys(m.Secrets)) {
		fmt.Fprintf(w, "  secret %s: from $%s\n", name, m.Secrets[name].Env)
	}
	for i := range m.Steps {
		s := &m.Steps[i]
		var lines []string
		for _, host := range slices.Sorted(maps.Keys(s.Allow.Paths)) {
			lines = append(lines, fmt.Sprintf("read     %s as %s", host, s.Allow.Paths[host]))
		}
		for _, host := range slices.Sorted(maps.Keys(s.Allow.WritePaths)) {
			lines = append(lines, fmt.Sprintf("write    %s as %s", host, s.Allow.WritePaths[host]))
		}
		for _, o := range s.Allow.Origins {
			lines = append(lines, "http     "+o.String())
		}
		for _, p := range s.Allow.PrivateNets {
			lines = append(lines, "private  "+p.String())
		}
		if len(s.Allow.Origins) > 0 {
			p := s.Policy(func(string) string { return "" })
			l := p.Limits.WithDefaults()
			redirects := fmt.Sprint(l.MaxRedirects)
			if p.NoRedirects {
				redirects = "not followed"
			}
			lines = append(lines, fmt.Sprintf("limits   response %s, %d requests an attempt, redirects %s, timeout %s, stall %s",
				bytesText(l.MaxResponseBytes), l.MaxRequests, redirects, l.Timeout, l.StallTimeout))
		}
		for _, c := range s.Allow.Resolved {
			idem := ""
			if c.Idempotent {
				idem = ", idempotent"
			}
			lines = append(lines, fmt.Sprintf("command  %s (%s%s), outside the sandbox", c.Name, c.Path, idem))
		}
		if len(s.Allow.Env) > 0 {
			lines = append(lines, "env      "+strings.Join(s.Allow.Env, ", "))
		}
		for _, name := range slices.Sorted(maps.Keys(s.Secrets)) {
			sg := s.Secrets[name]
			var to []string
			for _, o := range sg.Origins {
				to = append(to, o.String())
			}
			how := "named in the step's headers as {{secret." + name + "}}"
			if sg.Header != "" {
				how = "set by the host in " + sg.Header
			}
			lines = append(lines, fmt.Sprintf("secret   %s to %s, %s", name, strings.Join(to, ", "), how))
		}
		if len(lines) == 0 {
			lines = []string{"nothing (no files, no network, no commands, no secrets)"}
		}
		fmt.Fprintf(w, "  step %s:\n", s.ID)
		for _, l := range lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

func bytesText(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
