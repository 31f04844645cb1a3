package state

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/hashicorp/go-hclog"

	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/layout"
)

// File names inside the store directory (internal/layout holds them all).
const (
	DirName        = layout.StoreDir
	JournalFile    = layout.JournalFile
	SnapshotFile   = layout.SnapshotFile
	LockFile       = layout.LockFile
	OwnerFile      = layout.OwnerFile
	CheckpointsDir = layout.CheckpointsDir
	RunsDir        = layout.RunsDir
	IndexFile      = layout.IndexFile
)

// MaxRecordBytes bounds one journal record as written (its JSON line,
// newline included). Append refuses a longer one with ErrRecordTooLarge
// before any of its batch is written, so every record on disk can be read
// back.
const MaxRecordBytes = 64 << 20

// maxReadRecordBytes bounds one journal line when reading. It is far above
// MaxRecordBytes so that the records of versions that checked limits before
// escaping (up to six times larger) still read, and so that a run_state
// record of a large run (which the store writes itself) does; a complete
// line longer than this is reported as corruption, never dropped as a torn
// tail.
const maxReadRecordBytes = 1 << 30

// DefaultCompactBytes is the size of journal past which a writer compacts
// it (Config.CompactBytes).
const DefaultCompactBytes = 8 << 20

// recentRuns is how many finished runs the snapshot holds beside the
// unfinished ones.
const recentRuns = 10

// Config configures a FileStore.
type Config struct {
	// Dir is the store directory, usually <project>/.12fa.
	Dir string
	// ReadOnly opens without the lock, never writes, and tolerates a
	// journal that another process is appending to or compacting.
	ReadOnly bool
	// Now returns the time recorded in records; time.Now when nil.
	Now func() time.Time
	// WrapJournal, when set, wraps the journal file the store appends to;
	// tests use it to inject write and fsync errors.
	WrapJournal func(*os.File) JournalWriter
	// NoGroupCommit makes every Append wait for the one before it, so each
	// pays its own write and fsync: the naive baseline benchmarks compare
	// group commit against. Not for production use.
	NoGroupCommit bool
	// CompactBytes is the journal size past which it is compacted (at
	// least twice what its last compaction wrote); DefaultCompactBytes
	// when 0.
	CompactBytes int64
}

// JournalWriter is what the store appends records to: the journal's
// *os.File, or a wrapper of it (Config.WrapJournal).
type JournalWriter interface {
	io.Writer
	Sync() error
	Close() error
}

// FileStore is the embedded file store: a journal of the runs that are not
// finished, a file per finished run, an index of them (see the package
// documentation). Its methods are safe for concurrent use.
type FileStore struct {
	cfg  Config
	log  hclog.Logger
	lock *flock.Flock

	serial  sync.Mutex // held across a whole append with NoGroupCommit
	mu      sync.Mutex
	journal JournalWriter
	seq     uint64
	// runs are the runs the journal holds: those not finished, and
	// finished ones not yet in their run file.
	runs map[string]*Run

	// Group commit: records gather in pending (batch nextBatch) while a
	// flush of the previous batch is under way; doneBatch is the last batch
	// written (and fsync'd if asked).
	pending, spare       *bytes.Buffer
	pendingSync          bool
	nextBatch, doneBatch uint64
	flushing             bool
	flushed              *sync.Cond
	failed               error
	stats                Stats

	// Compaction: the journal's size, what its last compaction wrote, and
	// the size at which the next one starts.
	size, baseSize, compactAt int64

	// recent are the last finished runs filed by this process, newest
	// last, for the snapshot.
	recent []Run
	// snapSeq is the journal sequence the snapshot on disk reflects.
	snapSeq uint64

	indexMu sync.Mutex // serializes appends to the index

	// The filer (see queueFiling): the runs to file, whether it is
	// writing, the seq of each run whose file is durable, and its end.
	fileQ     []string
	filerBusy bool
	filed     map[string]uint64
	filing    *sync.Cond
	closing   bool
	filerDone chan struct{}

	claims map[string]bool // runs being executed in this process
}

// Init creates the store directory and its journal if they do not exist.
// It is safe to call on an existing store.
func Init(dir string) error {
	for _, d := range []string{CheckpointsDir, RunsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create store %s: %w", dir, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create journal: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create journal: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// Open opens the store in cfg.Dir, which Init must have created, and
// replays its journal. A writer then files the finished runs the journal
// still holds and compacts it when it is large.
func Open(cfg Config, log hclog.Logger) (*FileStore, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CompactBytes <= 0 {
		cfg.CompactBytes = DefaultCompactBytes
	}
	if _, err := os.Stat(cfg.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open store %s: %w", cfg.Dir, ErrNotInitialized)
	}
	s := &FileStore{cfg: cfg, log: log, runs: make(map[string]*Run), nextBatch: 1,
		pending: new(bytes.Buffer), spare: new(bytes.Buffer), compactAt: cfg.CompactBytes}
	s.flushed = sync.NewCond(&s.mu)
	s.filing = sync.NewCond(&s.mu)
	s.filed = map[string]uint64{}
	if !cfg.ReadOnly {
		if err := s.acquire(); err != nil {
			return nil, err
		}
	}
	based, err := s.replay()
	if err != nil {
		s.release()
		return nil, err
	}
	s.snapSeq = s.seq
	if cfg.ReadOnly {
		return s, nil
	}
	if err := os.MkdirAll(s.path(RunsDir), 0o755); err != nil {
		s.release()
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Finished runs left in the journal (a crash before they were filed,
	// or a journal of a version that kept every run in it) go to their
	// files, and the journal sheds them.
	var finished []string
	for id, r := range s.runs {
		if r.Status.Finished() {
			finished = append(finished, id)
		}
	}
	slices.Sort(finished)
	s.filerDone = make(chan struct{})
	go s.filer()
	if len(finished) > 0 {
		s.mu.Lock()
		s.queueFiling(finished...)
		s.drainFiling()
		s.mu.Unlock()
	}
	if (!based && s.size > 0) || s.size >= s.compactAt || len(finished) > 0 {
		s.compactNow()
	}
	return s, nil
}

func (s *FileStore) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

func (s *FileStore) acquire() error {
	s.lock = flock.New(s.path(LockFile))
	ok, err := s.lock.TryLock()
	if err != nil {
		return fmt.Errorf("lock store %s: %w", s.cfg.Dir, err)
	}
	if !ok {
		owner, _ := os.ReadFile(s.path(OwnerFile))
		who := strings.TrimSpace(string(owner))
		if who == "" {
			who = "an unknown process"
		}
		return fmt.Errorf("open store %s: %w: held by %s", s.cfg.Dir, ErrLocked, who)
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("pid %d on %s since %s (%s)\n", os.Getpid(), host,
		time.Now().UTC().Format(time.RFC3339), strings.Join(os.Args, " "))
	if err := atomicfile.Write(s.path(OwnerFile), []byte(owner), 0o644); err != nil {
		_ = s.lock.Unlock()
		return err
	}
	return nil
}

func (s *FileStore) release() {
	if s.lock != nil {
		_ = os.Remove(s.path(OwnerFile))
		_ = s.lock.Unlock()
		s.lock = nil
	}
}

// Stats counts the journal's I/O since Open.
type Stats struct {
	// Records is the number of records appended.
	Records uint64
	// Writes and Syncs count write and fsync calls on the journal; with
	// concurrent appenders one of each covers many records.
	Writes, Syncs uint64
	// Compactions counts the journal's compactions; Filed the runs written
	// to their run files.
	Compactions, Filed uint64
}

// Stats returns the journal's I/O counts since Open.
func (s *FileStore) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run returns the run with the given id: from the journal while it is
// unfinished, from its run file once it is finished. An unknown id is
// ErrUnknownRun.
func (s *FileStore) Run(id string) (Run, error) {
	s.mu.Lock()
	r, ok := s.runs[id]
	var c Run
	if ok {
		c = r.Clone()
	}
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	return s.readRunFile(id)
}

// hot returns copies of the runs the journal holds, newest activity first.
func (s *FileStore) hot() []Run {
	s.mu.Lock()
	out := make([]Run, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, r.Clone())
	}
	s.mu.Unlock()
	sortRecentFirst(out)
	return out
}

func sortRecentFirst(runs []Run) {
	slices.SortFunc(runs, func(a, b Run) int {
		return cmp.Or(b.UpdatedAt.Compare(a.UpdatedAt), b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
}

// snapshot is the document in agent-state.json.
type snapshot struct {
	Version    int       `json:"version"`
	JournalSeq uint64    `json:"journal_seq"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Runs are the unfinished runs and the last finished ones, newest
	// first; every run is in `12fa status --all`.
	Runs []Run `json:"runs"`
}

// WriteSnapshot replaces agent-state.json with the current state: the
// unfinished runs and the most recently finished ones.
func (s *FileStore) WriteSnapshot() error {
	if s.cfg.ReadOnly {
		return errors.New("snapshot of a store opened read-only")
	}
	s.mu.Lock()
	seq, written := s.seq, s.snapSeq
	recent := slices.Clone(s.recent)
	s.mu.Unlock()
	if seq == written && seq != 0 {
		return nil // nothing happened since the last snapshot
	}
	runs := s.hot()
	for i := len(recent) - 1; i >= 0; i-- {
		if !slices.ContainsFunc(runs, func(r Run) bool { return r.ID == recent[i].ID }) {
			runs = append(runs, recent[i])
		}
	}
	sortRecentFirst(runs)
	b, err := jsonenc.MarshalIndent(snapshot{Version: 2, JournalSeq: seq, UpdatedAt: s.cfg.Now().UTC(), Runs: runs})
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := atomicfile.Write(s.path(SnapshotFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	s.mu.Lock()
	s.snapSeq = seq
	s.mu.Unlock()
	return nil
}

// Close makes the last records durable, compacts the journal, writes the
// snapshot and releases the store.
func (s *FileStore) Close() error {
	if s.cfg.ReadOnly {
		return nil
	}
	var errs []error
	s.mu.Lock()
	for s.flushing {
		s.flushed.Wait()
	}
	if s.journal != nil && s.failed == nil && s.pending.Len() > 0 {
		// Lazy records nobody made durable yet.
		s.pendingSync = true
		s.flush()
	}
	healthy := s.journal != nil && s.failed == nil
	s.drainFiling()
	s.closing = true
	s.filing.Broadcast()
	grown := s.size > s.baseSize || len(s.filed) > 0
	s.mu.Unlock()
	if s.filerDone != nil {
		<-s.filerDone
	}
	if healthy && grown {
		s.compactNow()
	}
	if healthy {
		errs = append(errs, s.WriteSnapshot())
	}
	s.mu.Lock()
	if s.journal != nil {
		errs = append(errs, s.journal.Close())
		s.journal = nil
	}
	s.mu.Unlock()
	s.release()
	return errors.Join(errs...)
}

// Remove deletes the store directory dir. It takes the lock first so that a
// running process is never pulled out from under.
func Remove(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	s := &FileStore{cfg: Config{Dir: dir}}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("remove store: %w", err)
	}
	for _, e := range entries {
		if e.Name() == LockFile || e.Name() == OwnerFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove store: %w", err)
		}
	}
	_ = os.Remove(filepath.Join(dir, OwnerFile))
	_ = os.Remove(filepath.Join(dir, LockFile))
	return os.Remove(dir)
}
