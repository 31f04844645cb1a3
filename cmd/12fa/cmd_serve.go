package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/notify"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/serve"
)

// minToken is the shortest token serve accepts.
const minToken = 16

func newServeCommand(g *globalOptions) *cobra.Command {
	var addr, tokenEnv, publicURL string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "A live dashboard of the runs, where people answer questions from a browser",
		Long: `Serve a dashboard of the project's runs (or the --store database's) at
http://ADDR/: the runs, live and filtered; a run's steps as a timeline with
their outputs, context, checkpoints and log as it happens; the questions
steps asked, each with a form (answers go through the same checks as
12fa respond); a resume button where a run can go on (it starts
12fa resume in a process of its own); the features.

It reads the store without its lock, so it watches runs other processes
drive. It listens on loopback by default. Any other address needs a token:
--token-env NAME reads it from $NAME (at least 16 characters), and the
printed link carries it once (a cookie keeps it).

With --public-url (the address phones reach this server at, directly or
through a reverse proxy), the project's input-required notifications
carry ntfy buttons: signed links that answer from the phone, each once,
until the question expires or a day has passed. The key is
.12fa/serve.key; the runs find the URL in .12fa/serve.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := g.projectDir()
			if err != nil {
				return err
			}
			cfg := serve.Config{ProjectDir: dir, Loopback: serve.IsLoopback(addr), Log: g.logger().Named("serve")}
			if tokenEnv != "" {
				cfg.Token = os.Getenv(tokenEnv)
				if len(cfg.Token) < minToken {
					return exitFor(fmt.Errorf("serve: $%s holds no token of at least %d characters", tokenEnv, minToken))
				}
			}
			if publicURL != "" {
				links, err := notify.SaveAnswerLinks(runtime.StoreDir(dir), publicURL)
				if err != nil {
					return exitFor(err)
				}
				cfg.Links = &links
				if u, err := url.Parse(publicURL); err == nil {
					cfg.PublicHost = u.Host
				}
			}
			if !cfg.Loopback && cfg.Token == "" {
				return exitFor(fmt.Errorf("serve: --addr %s is not a loopback address: anyone who reaches it could answer questions; pass --token-env NAME with a token in $NAME", addr))
			}
			if g.store != "" {
				st, err := g.pgStore(cmd, "serve --store")
				if err != nil {
					return exitFor(err)
				}
				defer st.Close()
				v := runtime.NewView(dir, st)
				cfg.Open = func() (*runtime.View, func(), error) { return v, func() {}, nil }
				cfg.Progress = st.Progress
			} else {
				log := g.logger()
				cfg.Open = func() (*runtime.View, func(), error) {
					v, err := runtime.OpenView(dir, log)
					if err != nil {
						return nil, nil, err
					}
					return v, func() { _ = v.Close() }, nil
				}
			}
			cfg.Resume = g.resumer(dir, cfg.Log)
			s, err := serve.New(cfg)
			if err != nil {
				return exitFor(err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return exitFor(fmt.Errorf("serve: %w", err))
			}
			ctx := cmd.Context()
			srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
				BaseContext: func(net.Listener) context.Context { return ctx }}
			// The link to open: the public URL, else this machine's name
			// when listening on every address.
			host, port, _ := net.SplitHostPort(ln.Addr().String())
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				if h, err := os.Hostname(); err == nil {
					host = h
				}
			}
			link := "http://" + net.JoinHostPort(host, port) + "/"
			if publicURL != "" {
				link = strings.TrimSuffix(publicURL, "/") + "/"
			}
			if cfg.Token != "" {
				link += "?token=" + cfg.Token
			}
			fmt.Fprintf(g.stdout, "12fa serve: %s (Ctrl-C stops)\n", link)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return exitFor(fmt.Errorf("serve: %w", err))
			case <-ctx.Done():
			}
			// The live streams end with ctx (their requests' base).
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return exitFor(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8812", "address to listen on (host:port); not loopback needs --token-env")
	cmd.Flags().StringVar(&tokenEnv, "token-env", "", "require the token in this environment variable")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "the URL phones reach this server at: notifications get answer buttons")
	return cmd
}

// resumer resumes a run the way `12fa resume` does, in a process of its
// own (this one holds no lock), with this one's global flags; its output
// goes to the log.
func (g *globalOptions) resumer(dir string, log hclog.Logger) func(run string, retryFailed bool) error {
	return func(run string, retryFailed bool) error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		args := []string{"-C", dir, "--log-level", "warn"}
		if g.store != "" {
			args = append(args, "--store", g.store)
		}
		if g.cacheDir != "" {
			args = append(args, "--cache-dir", g.cacheDir)
		}
		args = append(args, "resume", run)
		if retryFailed {
			args = append(args, "--retry-failed")
		}
		cmd := exec.Command(self, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return err
		}
		log.Info("resume started", "run", run, "pid", cmd.Process.Pid)
		go func() {
			if err := cmd.Wait(); err != nil {
				log.Warn("resume ended", "run", run, "error", err, "output", termsafe.Text(clipTail(out.String(), 2000)))
				return
			}
			log.Info("resume ended", "run", run)
		}()
		return nil
	}
}

// clipTail is the last n bytes of s.
func clipTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + strings.ToValidUTF8(s[len(s)-n:], "")
}
