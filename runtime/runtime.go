package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/checkpoint"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/inputs"
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
	// AnswerLinks, when set, puts answer buttons on input-required
	// notifications: signed links to the dashboard (`12fa serve
	// --public-url` saves them; notify.LoadAnswerLinks reads them).
	AnswerLinks *notify.AnswerLinks
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
	// Store, when set, holds the runs instead of the project's .12fa/
	// file store (a pgstore.Store, say); Close closes it. A store with
	// questions of its own (a Questions() inputs.Backend method) keeps
	// the runs' questions too, and one with a ProgressSink() method the
	// progress log (which .12fa/progress.jsonl has as well). Checkpoint
	// records stay in .12fa/.
	Store state.Store
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
	var st state.Store = cfg.Store
	if st == nil {
		fst, err := state.Open(state.Config{Dir: dir, Now: cfg.Now, NoGroupCommit: cfg.NoGroupCommit, WrapJournal: cfg.WrapJournal,
			CompactBytes: cfg.CompactBytes}, cfg.Logger.Named("state"))
		if err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		st = fst
	}
	h, err := host.New(ctx, host.Config{CacheDir: cfg.CacheDir, MemoryBudget: cfg.MemoryBudget}, cfg.Logger.Named("host"))
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("runtime: %w", err)
	}
	var sink progress.Sink
	if ps, ok := st.(interface{ ProgressSink() progress.Sink }); ok {
		sink = ps.ProgressSink()
	}
	pl, err := progress.OpenWith(filepath.Join(dir, progress.FileName), cfg.ProgressMaxBytes, sink)
	if err != nil {
		_ = h.Close(ctx)
		_ = st.Close()
		return nil, fmt.Errorf("runtime: %w", err)
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, store: st, host: h, inputs: questionsOf(dir, st, cfg.Now), progress: pl,
		notifiers: make(map[string]*notify.Ntfy)}
	if fst, ok := st.(*state.FileStore); ok && fst.PruneInterrupted() {
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
	// The progress log before the store: its last entries may go to the
	// store's database (a progress sink).
	errs := []error{r.host.Close(ctx), r.progress.Close(), r.store.Close()}
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

// questionsOf returns where a store's questions are kept: the store's own
// (a database's questions table) when it has some, else the project's
// human-inputs.json.
func questionsOf(dir string, st state.Store, now func() time.Time) *inputs.Store {
	if q, ok := st.(interface{ Questions() inputs.Backend }); ok {
		return inputs.NewWith(q.Questions(), now)
	}
	return inputs.New(dir, now)
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
