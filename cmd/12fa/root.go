package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/notify"
	"github.com/12fa/12fa/pgstore"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// Exit codes. They are part of the CLI's contract (README, "Exit codes").
const (
	exitOK          = 0
	exitFailure     = 1 // usage, manifest, store or host error
	exitStepFailed  = 2 // a step failed; the run is failed
	exitNeedsPerson = 3 // a changed plugin or manifest: a person must decide
	exitPaused      = 4 // a step failed for good and the run is paused: resume tries again
	exitWaiting     = 5 // waiting for answers (a step's questions, an interrupted step): 12fa respond, then resume
	exitCanceled    = 130
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitFor maps an engine error to the CLI's exit code.
func exitFor(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runtime.ErrCanceled):
		return &exitError{exitCanceled, err}
	case errors.Is(err, runtime.ErrWaiting):
		return &exitError{exitWaiting, err}
	case errors.Is(err, runtime.ErrInterrupted), errors.Is(err, runtime.ErrPluginChanged),
		errors.Is(err, runtime.ErrManifestChanged):
		return &exitError{exitNeedsPerson, err}
	case errors.Is(err, runtime.ErrRunPaused):
		return &exitError{exitPaused, err}
	case errors.Is(err, runtime.ErrStepFailed), errors.Is(err, runtime.ErrRunFailed),
		errors.Is(err, runtime.ErrRolledBack), errors.Is(err, runtime.ErrRollbackFailed),
		errors.Is(err, runtime.ErrPluginPin):
		return &exitError{exitStepFailed, err}
	}
	return &exitError{exitFailure, err}
}

// globalOptions are the flags every command takes.
type globalOptions struct {
	dir      string
	cacheDir string
	noCache  bool
	logLevel string
	budget   manifest.Size
	store    string

	stdin          io.Reader
	stdout, stderr io.Writer
}

func (o *globalOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.dir, "dir", "C", ".", "project directory (its store is DIR/.12fa)")
	fs.StringVar(&o.cacheDir, "cache-dir", "", "compiled-plugin cache (default: the user cache directory)")
	fs.BoolVar(&o.noCache, "no-cache", false, "do not cache compiled plugins on disk")
	fs.StringVar(&o.logLevel, "log-level", "warn", "engine diagnostics on stderr: trace, debug, info, warn, error, off")
	fs.Var(&sizeFlag{&o.budget}, "memory-budget", "linear memory all instances alive at once may use, e.g. 8GiB (default 8GiB)")
	fs.StringVar(&o.store, "store", os.Getenv("TWELVEFA_STORE"), "where runs are kept: postgres://… (default $TWELVEFA_STORE, else the project's .12fa/)")
}

// openStore opens the store --store names, or returns nil for the
// project's file store.
func (o *globalOptions) openStore(ctx context.Context) (state.Store, error) {
	if o.store == "" {
		return nil, nil
	}
	if !strings.HasPrefix(o.store, "postgres://") && !strings.HasPrefix(o.store, "postgresql://") {
		return nil, fmt.Errorf("--store %q: want a postgres:// URL (or nothing, for the project's .12fa/)", o.store)
	}
	cfg, err := o.pgConfig()
	if err != nil {
		return nil, err
	}
	return pgstore.Open(ctx, cfg, o.logger().Named("pgstore"))
}

// Lease timing of the PostgreSQL store, for every command that holds runs
// (see pgstore.Config): durations such as 2s.
const (
	heartbeatEnv = "TWELVEFA_HEARTBEAT"
	leaseEnv     = "TWELVEFA_LEASE"
)

// pgConfig is the --store database's configuration.
func (o *globalOptions) pgConfig() (pgstore.Config, error) {
	cfg := pgstore.Config{URL: o.store}
	for env, d := range map[string]*time.Duration{heartbeatEnv: &cfg.Heartbeat, leaseEnv: &cfg.Lease} {
		v := os.Getenv(env)
		if v == "" {
			continue
		}
		var err error
		if *d, err = time.ParseDuration(v); err != nil || *d <= 0 {
			return cfg, fmt.Errorf("$%s=%q: want a positive duration such as 2s", env, v)
		}
	}
	return cfg, nil
}

// view opens what status, inputs and checkpoints read: the --store's
// runs, or the project's store without its lock.
func (o *globalOptions) view(ctx context.Context) (*runtime.View, error) {
	dir, err := o.projectDir()
	if err != nil {
		return nil, err
	}
	st, err := o.openStore(ctx)
	if err != nil {
		return nil, err
	}
	if st != nil {
		return runtime.NewView(dir, st), nil
	}
	return runtime.OpenView(dir, o.logger())
}

func (o *globalOptions) projectDir() (string, error) {
	return filepath.Abs(o.dir)
}

func (o *globalOptions) logger() hclog.Logger {
	if strings.EqualFold(o.logLevel, "off") {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: "12fa", Level: hclog.LevelFromString(o.logLevel), Output: o.stderr})
}

// runtimeConfig is the engine's configuration, on the --store.
func (o *globalOptions) runtimeConfig(onEvent func(runtime.Event)) (runtime.Config, error) {
	cfg, err := o.engineConfig(onEvent)
	if err != nil {
		return cfg, err
	}
	cfg.Store, err = o.openStore(context.Background())
	return cfg, err
}

// engineConfig is the engine's configuration without its store.
func (o *globalOptions) engineConfig(onEvent func(runtime.Event)) (runtime.Config, error) {
	dir, err := o.projectDir()
	if err != nil {
		return runtime.Config{}, err
	}
	cfg := runtime.Config{ProjectDir: dir, CacheDir: o.cacheDir, NoCache: o.noCache, Logger: o.logger(), OnEvent: onEvent,
		MemoryBudget: int64(o.budget)}
	// `12fa serve --public-url` asked for answer buttons.
	if links, ok := notify.LoadAnswerLinks(runtime.StoreDir(dir)); ok {
		cfg.AnswerLinks = &links
	}
	return cfg, nil
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "12fa",
		Short:         "Run long, resumable agent workflows whose steps are sandboxed Wasm plugins",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newInitCommand(g),
		newRunCommand(g),
		newResumeCommand(g),
		newRollbackCommand(g),
		newStatusCommand(g),
		newInputsCommand(g),
		newLogsCommand(g),
		newCheckpointsCommand(g),
		newRestoreCommand(g),
		newForkCommand(g),
		newFeaturesCommand(g),
		newAddFeatureCommand(g),
		newFeatureCommand(g),
		newRespondCommand(g),
		newCleanCommand(g),
		newPruneCommand(g),
		newStoreCommand(g),
		newExportCommand(g),
		newSubmitCommand(g),
		newWorkerCommand(g),
		newServeCommand(g),
		newBenchCommand(g),
		newNewCommand(g),
		newValidateCommand(g),
	)
	return root
}

// sizeFlag is a pflag.Value for sizes such as "8GiB".
type sizeFlag struct{ s *manifest.Size }

func (f *sizeFlag) String() string {
	if f.s == nil || *f.s == 0 {
		return ""
	}
	return fmt.Sprint(int64(*f.s))
}
func (f *sizeFlag) Set(v string) error { return f.s.UnmarshalText([]byte(v)) }
func (f *sizeFlag) Type() string       { return "size" }

func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
