package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/checkpoint"
	"github.com/12fa/12fa/command"
	"github.com/12fa/12fa/egress"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/jsrunner"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/notify"
	"github.com/12fa/12fa/progress"
	"github.com/12fa/12fa/state"
)

// Config configures a Runtime.
type Config struct {
	// ProjectDir is the project root; its store is ProjectDir/.12fa.
	// Default: the working directory.
	ProjectDir string
	// CacheDir holds compiled plugins between processes. Default: the
	// user's cache directory (12fa/compiled); empty with NoCache set keeps
	// them in memory only.
	CacheDir string
	// NoCache disables the on-disk compile cache.
	NoCache bool
	// Logger receives the engine's own diagnostics. Default: none.
	Logger hclog.Logger
	// OnEvent, when set, sees every step event as it happens (for progress
	// output). It is called from the goroutine running the workflow: with
	// concurrent runs, from several goroutines at once.
	OnEvent func(Event)
	// Now is the clock for records. Default: time.Now.
	Now func() time.Time
	// MemoryBudget bounds the linear memory of all instances alive at once
	// (see host.Config.MemoryBudget); 0 means host.DefaultMemoryBudget.
	MemoryBudget int64
	// Notifier, when set, receives every run's notifications instead of the
	// ntfy client a manifest's [notify] table (or the environment) sets up.
	Notifier Notifier
	// WrapJournal wraps the journal file; tests use it to inject faults.
	WrapJournal func(*os.File) state.JournalWriter
	// NoGroupCommit gives every journal append its own fsync, as a naive
	// engine would; benchmarks use it as their baseline.
	NoGroupCommit bool
	// CompactBytes is the journal size past which the store compacts it
	// (state.Config.CompactBytes); 0 for the default.
	CompactBytes int64
	// ProgressMaxBytes is the size past which progress.jsonl rotates;
	// 0 for progress.DefaultMaxBytes.
	ProgressMaxBytes int64
}

// StoreDir returns the store directory of a project.
func StoreDir(projectDir string) string { return filepath.Join(projectDir, state.DirName) }

// DefaultCacheDir is where compiled plugins are cached by default.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache directory: %w", err)
	}
	return filepath.Join(d, "12fa", "compiled"), nil
}

// Runtime runs workflows against one project's store. Use one at a time per
// store (the store's lock enforces it across processes).
//
// Run, Resume and RunAll may be called from several goroutines: each run is
// executed in order by one goroutine, and the runs share the host's compiled
// plugins and the store's journal (whose fsyncs they share too).
type Runtime struct {
	cfg      Config
	log      hclog.Logger
	store    state.Store
	host     *host.Host
	inputs   *inputs.Store
	progress *progress.Log

	mu        sync.Mutex
	notifiers map[string]*notify.Ntfy // by server and topic
	git       *checkpoint.Git         // opened at the first checkpoint
	gitErr    error                   // why there is none
}

// Notifier sends notifications; *notify.Ntfy is one.
type Notifier interface {
	Notify(ctx context.Context, n abi.Notification) error
}

// Init creates the store of a project if it does not exist.
func Init(projectDir string) error { return state.Init(StoreDir(projectDir)) }

// New opens the project's store (creating it when missing) and a Wasm host.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProjectDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		cfg.ProjectDir = wd
	}
	if cfg.CacheDir == "" && !cfg.NoCache {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, fmt.Errorf("runtime: %w (set a cache directory, or disable the cache)", err)
		}
		cfg.CacheDir = d
	}
	if cfg.NoCache {
		cfg.CacheDir = ""
	}
	dir := StoreDir(cfg.ProjectDir)
	if err := state.Init(dir); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	st, err := state.Open(state.Config{Dir: dir, Now: cfg.Now, NoGroupCommit: cfg.NoGroupCommit, WrapJournal: cfg.WrapJournal,
		CompactBytes: cfg.CompactBytes}, cfg.Logger.Named("state"))
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	h, err := host.New(ctx, host.Config{CacheDir: cfg.CacheDir, MemoryBudget: cfg.MemoryBudget}, cfg.Logger.Named("host"))
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("runtime: %w", err)
	}
	pl, err := progress.Open(filepath.Join(dir, progress.FileName), cfg.ProgressMaxBytes)
	if err != nil {
		_ = h.Close(ctx)
		_ = st.Close()
		return nil, fmt.Errorf("runtime: %w", err)
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, store: st, host: h, inputs: inputs.New(dir, cfg.Now), progress: pl,
		notifiers: make(map[string]*notify.Ntfy)}
	if st.PruneInterrupted() {
		if _, err := r.Prune(ctx, PruneOptions{}); err != nil {
			_ = r.Close(ctx)
			return nil, fmt.Errorf("runtime: finish the interrupted prune: %w", err)
		}
	}
	return r, nil
}

// Close releases the host and the store (writing its snapshot), and gives
// queued notifications up to five seconds to go out.
func (r *Runtime) Close(ctx context.Context) error {
	errs := []error{r.host.Close(ctx), r.store.Close(), r.progress.Close()}
	if r.git != nil {
		errs = append(errs, r.git.SaveCache())
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	r.mu.Lock()
	for _, n := range r.notifiers {
		if err := n.Close(nctx); err != nil {
			r.log.Warn("notifications not sent", "error", err)
		}
	}
	r.mu.Unlock()
	return errors.Join(errs...)
}

// notifierFor returns where a run of m sends notifications, or nil when
// they are off: Config.Notifier, else the manifest's [notify] table, else
// the environment (ENABLE_NTFY …).
func (r *Runtime) notifierFor(m *manifest.Manifest) Notifier {
	if r.cfg.Notifier != nil {
		return r.cfg.Notifier
	}
	cfg, ok := notify.FromEnv()
	if m.Notify.NtfyURL != "" {
		cfg, ok = notify.Config{URL: m.Notify.NtfyURL, Topic: m.Notify.Topic}, true
		if m.Notify.TokenEnv != "" {
			cfg.Token = os.Getenv(m.Notify.TokenEnv)
		}
	}
	if !ok {
		return nil
	}
	key := cfg.URL + "\x00" + cfg.Topic
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.notifiers[key]; ok {
		return n
	}
	n, err := notify.New(cfg, r.log.Named("notify"))
	if err != nil {
		r.log.Warn("notifications off", "error", err)
		return nil
	}
	r.notifiers[key] = n
	return n
}

// StoreStats returns the journal's I/O counts since New (records, writes,
// fsyncs).
func (r *Runtime) StoreStats() state.Stats { return r.store.Stats() }

// Runs lists the runs of the store that o selects, the most recently
// active first.
func (r *Runtime) Runs(o state.ListOptions) ([]state.RunInfo, error) { return r.store.List(o) }

// RunState returns a run of the store: its steps and context as the
// journal (or, once finished, its run file) says.
func (r *Runtime) RunState(id string) (state.Run, error) { return r.lookup(id) }

// lookup reads a run, with ErrRunNotFound for an unknown one.
func (r *Runtime) lookup(id string) (state.Run, error) { return runOf(r.store, id) }

func runOf(st state.Store, id string) (state.Run, error) {
	run, err := st.Run(id)
	if errors.Is(err, state.ErrUnknownRun) {
		return run, fmt.Errorf("%w: %q", ErrRunNotFound, id)
	}
	return run, err
}

// RunOptions say which run to continue and what a resume may do.
type RunOptions struct {
	// RunID continues this run. Empty: continue the newest unfinished run of
	// the same workflow, or start a new one.
	RunID string
	// New always starts a new run.
	New bool
	// Upgrade accepts plugins that changed since the run started.
	Upgrade bool
	// RerunInterrupted runs an interrupted non-idempotent step again.
	RerunInterrupted bool
	// MarkDone completes an interrupted non-idempotent step without running
	// it again (its output is null).
	MarkDone bool
	// RetryFailed continues a failed run from its failed step.
	RetryFailed bool
	// Wait keeps going when a step waits for answers: Run waits for them
	// (answered by another process, or by defaults when questions expire)
	// and continues, instead of returning ErrWaiting. WaitTimeout, when
	// set, bounds the wait.
	Wait        bool
	WaitTimeout time.Duration
}

// Result is the outcome of Run or Resume.
type Result struct {
	RunID  string          `json:"run_id"`
	Status state.RunStatus `json:"status"`
	// Steps holds every step's final state in manifest order.
	Steps []state.Step `json:"steps"`
	// Ran counts the steps that ran in this call; Replayed those whose output
	// came from the journal; MarkedDone those completed by RunOptions.MarkDone.
	Ran        int `json:"ran"`
	Replayed   int `json:"replayed"`
	MarkedDone int `json:"marked_done"`
}

// Output returns the output of a step.
func (res *Result) Output(step string) json.RawMessage {
	for _, s := range res.Steps {
		if s.ID == step {
			return s.Output
		}
	}
	return nil
}

// newRunID returns a sortable, readable, unique run id: the time to the
// second and 48 random bits (three bytes let two of a thousand runs started
// in one second collide every few seconds).
func (r *Runtime) newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return r.cfg.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// Resume continues the run with the given id, reading the manifest it was
// started from.
func (r *Runtime) Resume(ctx context.Context, runID string, opts RunOptions) (*Result, error) {
	return r.resume(ctx, runID, opts, forward)
}

// resume carries intent out on a run, reading the manifest it was started
// from.
func (r *Runtime) resume(ctx context.Context, runID string, opts RunOptions, in intent) (*Result, error) {
	if runID == "" {
		runs, err := r.store.List(state.ListOptions{Status: continuable(opts), Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if len(runs) == 0 {
			return nil, fmt.Errorf("resume: %w: no unfinished run in the store", ErrRunNotFound)
		}
		runID = runs[0].ID
	}
	run, err := r.lookup(runID)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	if _, err := decide(run, in, opts); err != nil {
		return nil, err
	}
	if run.Manifest == "" {
		return nil, fmt.Errorf("resume %s: the run was built in code; call Run with its workflow", runID)
	}
	m, err := manifest.Load(run.Manifest)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", runID, err)
	}
	opts.RunID = runID
	return r.execute(ctx, m, opts, in)
}

// Rollback undoes the run with the given id (saga): the rollback exports of
// its failed or interrupted step and of its completed steps, in reverse
// order. It continues a rollback under way or one that failed.
func (r *Runtime) Rollback(ctx context.Context, runID string) (*Result, error) {
	if runID == "" {
		runs, err := r.store.List(state.ListOptions{Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("rollback: %w", err)
		}
		if len(runs) == 0 {
			return nil, fmt.Errorf("rollback: %w: the store has no runs", ErrRunNotFound)
		}
		runID = runs[0].ID
	}
	return r.resume(ctx, runID, RunOptions{}, undo)
}

// loaded is a step's plugin, read and checked.
type loaded struct {
	step   *manifest.Step
	sha    string
	plugin *host.Plugin
	// script is the source of a JavaScript step, which runs in the JS step
	// runner (internal/jsrunner); nil for a Wasm plugin.
	script []byte
	// http sends the step's HTTP requests under its grants; nil when
	// allow.hosts grants none.
	http *egress.Client
	// missing names the secrets granted to the step that have no value.
	missing []string
	// exec runs the step's commands; nil when allow.commands grants none.
	exec *command.Policy
}

// load reads, checks and compiles every step's plugin before anything runs,
// so that a missing, pinned-and-changed or unusable plugin stops the
// workflow before its first step. Each file is read and hashed once.
func (r *Runtime) load(ctx context.Context, m *manifest.Manifest) ([]loaded, error) {
	type file struct {
		wasm   []byte
		sha    string
		script []byte
	}
	type compiled struct {
		path  string
		pages uint32
	}
	files := map[string]file{}
	plugins := map[compiled]*host.Plugin{}
	start := time.Now()
	steps := make([]loaded, len(m.Steps))
	for i := range m.Steps {
		s := &m.Steps[i]
		f, ok := files[s.PluginPath]
		if !ok {
			b, err := os.ReadFile(s.PluginPath)
			if err != nil {
				return nil, &StepError{Step: s.ID, Cause: abi.CausePluginMissing, Err: fmt.Errorf("read plugin: %w", err)}
			}
			// A JavaScript step is known (and pinned) by its script's
			// digest, and runs in the JS step runner.
			f = file{wasm: b, sha: host.SHA256Hex(b)}
			if jsrunner.IsScript(s.PluginPath) {
				f.script, f.wasm = b, jsrunner.Wasm
			}
			files[s.PluginPath] = f
		}
		if f.script != nil && s.InputMode == manifest.InputRaw {
			return nil, &StepError{Step: s.ID, Cause: abi.CauseInvalidPlugin, Err: fmt.Errorf(
				"%s: input_mode = %q is for Wasm plugins; a JavaScript step reads its input as env.input", s.Plugin, manifest.InputRaw)}
		}
		if s.SHA256 != "" && s.SHA256 != f.sha {
			return nil, &StepError{Step: s.ID, Cause: abi.CausePluginPin, Err: fmt.Errorf("%w: %s is %s, the manifest pins %s",
				ErrPluginPin, s.Plugin, f.sha, s.SHA256)}
		}
		key := compiled{s.PluginPath, s.MemoryPages()}
		p, ok := plugins[key]
		if !ok {
			var err error
			if p, err = r.host.Load(ctx, f.wasm, host.Limits{MaxPages: key.pages}); err != nil {
				return nil, &StepError{Step: s.ID, Cause: abi.CauseInvalidPlugin, Err: fmt.Errorf("load %s: %w", s.Plugin, err)}
			}
			plugins[key] = p
		}
		fn := s.Function
		if fn == "" {
			fn = abi.DefaultFunction
		}
		for _, name := range []string{fn, s.Rollback} {
			// A script's functions are known only when it runs; the runner
			// names a missing one.
			if name != "" && !p.Exports[name] && f.script == nil {
				return nil, &StepError{Step: s.ID, Cause: abi.CauseNoFunction, Err: fmt.Errorf("%s exports no function %q of type () -> i32", s.Plugin, name)}
			}
		}
		steps[i] = loaded{step: s, sha: f.sha, plugin: p, script: f.script}
		if len(s.Allow.Origins) > 0 {
			// Secrets are read from the environment here, at each process's
			// start, and live only in the client.
			pol := s.Policy(os.Getenv)
			for _, sec := range pol.Secrets {
				if sec.Value == "" {
					steps[i].missing = append(steps[i].missing, fmt.Sprintf("%s ($%s)", sec.Name, s.Secrets[sec.Name].Env))
				}
			}
			steps[i].http = egress.NewClient(pol)
		}
		if len(s.Allow.Resolved) > 0 {
			p := &command.Policy{Commands: s.Allow.Resolved, Env: s.Allow.Env, Getenv: os.LookupEnv}
			for host, guest := range s.Allow.WritePaths {
				p.Dirs = append(p.Dirs, command.Dir{Guest: guest, Host: resolvePath(m.Dir, host)})
			}
			slices.SortFunc(p.Dirs, func(a, b command.Dir) int { return strings.Compare(a.Guest, b.Guest) })
			steps[i].exec = p
		}
	}
	r.emit(Event{Type: EventPluginsLoaded, Workflow: m.Workflow.Name, Steps: len(plugins), Duration: time.Since(start)})
	return steps, nil
}

// Run runs the workflow m: a new run, or the continuation of an unfinished
// one (see RunOptions).
func (r *Runtime) Run(ctx context.Context, m *manifest.Manifest, opts RunOptions) (*Result, error) {
	return r.execute(ctx, m, opts, forward)
}

// execute carries intent out on a run of m, waiting for answers as
// opts.Wait says.
func (r *Runtime) execute(ctx context.Context, m *manifest.Manifest, opts RunOptions, in intent) (*Result, error) {
	for {
		res, err := r.runOnce(ctx, m, opts, in)
		if !opts.Wait || res == nil || !errors.Is(err, ErrWaiting) {
			return res, err
		}
		var ids []string
		if run, err := r.store.Run(res.RunID); err == nil {
			ids = append(ids, run.Pending...)
		}
		for _, s := range res.Steps {
			ids = append(ids, s.Pending...)
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if opts.WaitTimeout > 0 {
			wctx, cancel = context.WithTimeout(ctx, opts.WaitTimeout)
		}
		werr := r.inputs.Wait(wctx, ids)
		cancel()
		if werr != nil && !errors.Is(werr, inputs.ErrExpired) {
			// Gave up waiting: the run stays waiting for a later resume.
			return res, fmt.Errorf("%w (stopped waiting: %v)", err, werr)
		}
		// Answered (or expired: the step runs again and fails or takes its
		// default).
		opts.RunID, opts.New = res.RunID, false
	}
}

// WaitForResponse waits up to timeout for question id to be answered (by
// `12fa respond` or Respond, from any process) and returns it.
func (r *Runtime) WaitForResponse(ctx context.Context, id string, timeout time.Duration) (inputs.Question, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.inputs.Wait(ctx, []string{id}); err != nil {
		return inputs.Question{}, err
	}
	qs, err := r.inputs.Get([]string{id})
	if err != nil || len(qs) == 0 {
		return inputs.Question{}, fmt.Errorf("question %s: %w", id, inputs.ErrNotFound)
	}
	return qs[0], nil
}

// runOnce is one pass of Run: it stops at the first step that waits.
func (r *Runtime) runOnce(ctx context.Context, m *manifest.Manifest, opts RunOptions, in intent) (*Result, error) {
	steps, err := r.load(ctx, m)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, l := range steps {
			if l.http != nil {
				l.http.Close() // its idle connections end with the run
			}
		}
	}()
	run, act, err := r.pickRun(ctx, m, steps, opts, in)
	if err != nil {
		return nil, err
	}
	defer r.store.Release(run.ID)
	x := &execution{rt: r, m: m, steps: steps, opts: opts, act: act, runID: run.ID,
		context: contextMap(run.Context), res: &Result{RunID: run.ID}, notifier: r.notifierFor(m)}
	if run.Status != state.RunRunning || run.Steps[0].Attempt > 0 {
		// A resumed run: its next checkpoint follows its last one.
		x.lastCommit = r.lastCommit(run)
	}
	if run.Status == state.RunRunning && len(run.Steps) > 0 && run.Steps[0].Status == state.StepPending && run.Steps[0].Attempt == 0 {
		x.announce(ctx, abi.Notification{Title: "Run started: " + m.Workflow.Name, Priority: 2, Tags: []string{"arrow_forward"},
			Message: fmt.Sprintf("run %s, %d steps", run.ID, len(run.Steps))})
	}
	res, err := x.run(ctx, &run)
	x.announceEnd(ctx, res)
	return res, err
}

// claim makes this process the executor of a run until the store's
// Release; ErrRunActive when another goroutine already executes it.
func (r *Runtime) claim(id string) error {
	if err := r.store.Claim(id); err != nil {
		if errors.Is(err, state.ErrClaimed) {
			return fmt.Errorf("run %s: %w", id, ErrRunActive)
		}
		return err
	}
	return nil
}

// pickRun finds the run to continue or starts a new one, claims it, and
// checks that the manifest and plugins still match it; decide says what is
// done with it. The caller releases the claim when it is done; on error
// nothing stays claimed.
func (r *Runtime) pickRun(ctx context.Context, m *manifest.Manifest, steps []loaded, opts RunOptions, in intent) (run state.Run, act action, err error) {
	found := false
	switch {
	case opts.RunID != "":
		if err := r.claim(opts.RunID); err != nil {
			return run, 0, err
		}
		if run, err = r.lookup(opts.RunID); err != nil {
			r.store.Release(opts.RunID)
			return run, 0, err
		}
		found = true
	case !opts.New:
		runs, err := r.store.List(state.ListOptions{Workflow: m.Workflow.Name, Manifest: m.Path, Status: continuable(opts)})
		if err != nil {
			return run, 0, err
		}
		for _, info := range runs {
			if r.claim(info.ID) != nil {
				continue
			}
			if run, err = r.lookup(info.ID); err != nil {
				r.store.Release(info.ID)
				return run, 0, err
			}
			found = true
			break
		}
	}
	if found {
		defer func() {
			if err != nil {
				r.store.Release(run.ID)
			}
		}()
	}
	if !found {
		id := r.newRunID()
		decl := make([]state.StepDecl, len(steps))
		for i, l := range steps {
			decl[i] = state.StepDecl{ID: l.step.ID, Plugin: l.sha}
		}
		rec := &state.Record{Type: state.EventRunStarted, Run: id, Workflow: m.Workflow.Name, Manifest: m.Path, Steps: decl}
		if err := r.claim(id); err != nil {
			return run, 0, err
		}
		if err := r.commit(ctx, []*state.Record{rec}, Event{Type: EventRunStarted, Run: id, Workflow: m.Workflow.Name, Steps: len(steps)}); err != nil {
			r.store.Release(id)
			return run, 0, fmt.Errorf("start run: %w", err)
		}
		if run, err = r.lookup(id); err != nil {
			r.store.Release(id)
		}
		return run, actProceed, err
	}

	if act, err = decide(run, in, opts); err != nil {
		return run, 0, err
	}
	if len(run.Steps) != len(steps) {
		return run, 0, fmt.Errorf("run %s: %w: it has %d steps, %s has %d", run.ID, ErrManifestChanged, len(run.Steps), m.Path, len(steps))
	}
	var upgrades []*state.Record
	for i, l := range steps {
		rs := run.Steps[i]
		if rs.ID != l.step.ID {
			return run, 0, fmt.Errorf("run %s: %w: step %d is %q in the run and %q in %s", run.ID, ErrManifestChanged, i+1, rs.ID, l.step.ID, m.Path)
		}
		if rs.Status == state.StepCompleted || rs.Plugin == l.sha {
			continue
		}
		if !opts.Upgrade {
			return run, 0, &StepError{Step: rs.ID, Cause: abi.CausePluginChanged, Err: fmt.Errorf("%w: %s is now %s, the run started with %s; resume with --upgrade to accept it",
				ErrPluginChanged, l.step.Plugin, short(l.sha), short(rs.Plugin))}
		}
		upgrades = append(upgrades, &state.Record{Type: state.EventPluginUpgraded, Run: run.ID, Step: rs.ID, Plugin: l.sha})
	}
	if act == actDone {
		return run, act, nil
	}
	var recs []*state.Record
	if act == actProceed {
		recs = append(recs, &state.Record{Type: state.EventRunResumed, Run: run.ID})
	}
	recs = append(recs, upgrades...)
	if len(recs) == 0 {
		return run, act, nil
	}
	if err := r.commit(ctx, recs, Event{Type: EventRunResumed, Run: run.ID, Workflow: m.Workflow.Name, Steps: len(steps)}); err != nil {
		return run, 0, fmt.Errorf("resume run %s: %w", run.ID, err)
	}
	run, err = r.lookup(run.ID)
	return run, act, err
}

// continuable lists the statuses of the runs that run or resume picks up
// without being named: an interrupted, paused or waiting run, or one whose
// rollback was interrupted; a failed one only with RetryFailed.
func continuable(opts RunOptions) []state.RunStatus {
	st := []state.RunStatus{state.RunRunning, state.RunPaused, state.RunRollingBack, state.RunWaiting}
	if opts.RetryFailed {
		st = append(st, state.RunFailed)
	}
	return st
}

func failedRunError(run state.Run) error {
	return fmt.Errorf("run %s: %w at step %q (%s): %s; resume with --retry-failed to try that step again",
		run.ID, ErrRunFailed, failedStep(run), run.Cause, run.Error)
}

func failedStep(run state.Run) string {
	for _, s := range run.Steps {
		if s.Status == state.StepFailed {
			return s.ID
		}
	}
	return "?"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// emit records an event in progress.jsonl and hands it to Config.OnEvent.
// commit makes recs durable in the journal, then emits evs: no event (in
// progress.jsonl, to OnEvent) tells of what the journal could still lose.
// Pass context.WithoutCancel(ctx) for records of what has happened already
// (a step that acted), so that a canceled caller does not leave it untold.
func (r *Runtime) commit(ctx context.Context, recs []*state.Record, evs ...Event) error {
	return r.journal(ctx, r.store.Append, recs, evs)
}

// commitLazy is commit for records the disk may lose to a power cut
// without harm (an idempotent step's start: it simply runs again): it
// waits for the write, not the fsync.
func (r *Runtime) commitLazy(ctx context.Context, recs []*state.Record, evs ...Event) error {
	return r.journal(ctx, r.store.AppendLazy, recs, evs)
}

func (r *Runtime) journal(ctx context.Context, add func(context.Context, ...*state.Record) error, recs []*state.Record, evs []Event) error {
	if err := add(ctx, recs...); err != nil {
		return err
	}
	for _, e := range evs {
		r.emit(e)
	}
	return nil
}

func (r *Runtime) emit(e Event) {
	e.Time = r.cfg.Now()
	if err := r.progress.Add(progressEntry(e)); err != nil {
		r.log.Warn("progress log", "error", err)
	}
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(e)
	}
}

// progressEntry turns an event into a progress.jsonl line.
func progressEntry(e Event) progress.Entry {
	p := progress.Entry{Time: e.Time.UTC(), Session: e.Run, Step: e.Step, Action: string(e.Type),
		DurationMS: ms(e.Duration)}
	switch e.Type {
	case EventRunStarted, EventRunResumed, EventRunCompleted, EventRunFailed, EventRunRolledBack, EventPluginsLoaded:
		p.Phase = "run"
	case EventRollbackStarted, EventRollbackCompleted, EventRollbackFailed:
		p.Phase = "rollback"
	case EventStepLog:
		p.Phase, p.Action, p.Details = "log", e.Log.Source+"."+e.Log.Level.String(), e.Log.Message
	case EventHostCall:
		p.Phase, p.Action, p.Details = "call", e.Call.Kind, e.Call.String()
	default:
		p.Phase = "step"
	}
	switch e.Type {
	case EventStepCompleted, EventStepReplayed, EventStepMarkedDone, EventRunCompleted, EventRollbackCompleted, EventRunRolledBack:
		p.Result = "ok"
	case EventStepFailed, EventRunFailed, EventRollbackFailed:
		p.Result = "failed"
	case EventStepWaiting:
		p.Result = "waiting"
		for _, q := range e.Questions {
			p.Details += q.ID + ": " + q.Question + "; "
		}
	}
	if e.Err != nil {
		p.Details = e.Err.Error()
		if e.RetryIn > 0 {
			p.Details += fmt.Sprintf("; retrying in %s", e.RetryIn.Round(time.Millisecond))
		}
	}
	if e.Attempt > 0 && p.Phase != "log" {
		p.Details = strings.TrimSpace(fmt.Sprintf("attempt %d %s", e.Attempt, p.Details))
	}
	return p
}

// ProgressPath is where a project's progress log is.
func ProgressPath(projectDir string) string {
	return filepath.Join(StoreDir(projectDir), progress.FileName)
}

// contextMap is a run's workflow context as the host reads it.
type contextMap map[string]json.RawMessage

func (c contextMap) Get(key string) (json.RawMessage, bool) {
	v, ok := c[key]
	return v, ok
}

// bytes is what the context counts toward abi.MaxContextBytes.
func (c contextMap) bytes() int {
	n := 0
	for k, v := range c {
		n += host.ContextEntryBytes(k, v)
	}
	return n
}

// normalizeOutput makes a guest's output a JSON document, losing nothing:
// JSON stays as it is (compacted), other UTF-8 text becomes a JSON string,
// nothing becomes null, and bytes that are not UTF-8 (binary) become a JSON
// string of their base64, with binary set.
func normalizeOutput(b []byte) (out json.RawMessage, binary bool) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return json.RawMessage("null"), false
	}
	if utf8.Valid(t) && json.Valid(t) {
		var buf bytes.Buffer
		_ = json.Compact(&buf, t) // valid JSON always compacts
		return buf.Bytes(), false
	}
	if !utf8.Valid(b) {
		return jsonenc.String(base64.StdEncoding.EncodeToString(b)), true
	}
	return jsonenc.String(string(b)), false
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, filepath.FromSlash(p))
}

// Respond answers question id of a project; the waiting run goes on at its
// next run or resume.
func Respond(projectDir, id, answer string) (inputs.Question, error) {
	if _, err := os.Stat(StoreDir(projectDir)); err != nil {
		return inputs.Question{}, fmt.Errorf("respond: %w", state.ErrNotInitialized)
	}
	return inputs.New(StoreDir(projectDir), nil).Respond(id, answer)
}

// Clean removes a project's store, and the shadow refs of its checkpoints
// (refs/12fa/*). It fails while another process holds the store.
func Clean(projectDir string) error {
	if err := state.Remove(StoreDir(projectDir)); err != nil {
		return err
	}
	if g, err := checkpoint.Open(projectDir, ""); err == nil {
		return g.RemoveRefs(nil)
	}
	return nil
}

// RunAll runs the workflows concurrently, at most parallel at a time (all of
// them when parallel < 1), each as Run would, and returns their results and
// errors in the order of ms.
func (r *Runtime) RunAll(ctx context.Context, ms []*manifest.Manifest, opts RunOptions, parallel int) ([]*Result, []error) {
	if parallel < 1 || parallel > len(ms) {
		parallel = len(ms)
	}
	results := make([]*Result, len(ms))
	errs := make([]error, len(ms))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = r.Run(ctx, m, opts)
		}()
	}
	wg.Wait()
	return results, errs
}
