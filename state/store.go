package state

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
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
)

// File names inside the store directory.
const (
	DirName        = ".12fa"
	JournalFile    = "journal.jsonl"
	SnapshotFile   = "agent-state.json"
	LockFile       = "lock"
	OwnerFile      = "lock.owner"
	CheckpointsDir = "checkpoints"
)

// MaxRecordBytes bounds one journal record as written (its JSON line,
// newline included). Append refuses a longer one with ErrRecordTooLarge
// before any of its batch is written, so every record on disk can be read
// back.
const MaxRecordBytes = 64 << 20

// maxReadRecordBytes bounds one journal line when reading. It is far above
// MaxRecordBytes so that the records of versions that checked limits before
// escaping (up to six times larger) still read; a complete line longer than
// this is reported as corruption, never dropped as a torn tail.
const maxReadRecordBytes = 1 << 30

// Config configures a Store.
type Config struct {
	// Dir is the store directory, usually <project>/.12fa.
	Dir string
	// ReadOnly opens without the lock, never writes, and tolerates a
	// journal that another process is appending to.
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
}

// JournalWriter is what the store appends records to: the journal's
// *os.File, or a wrapper of it (Config.WrapJournal).
type JournalWriter interface {
	io.Writer
	Sync() error
	Close() error
}

// Store is the embedded file store. Its methods are safe for concurrent use.
type Store struct {
	cfg  Config
	log  hclog.Logger
	lock *flock.Flock

	serial  sync.Mutex // held across a whole append with NoGroupCommit
	mu      sync.Mutex
	journal JournalWriter
	seq     uint64
	runs    map[string]*Run

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
	// snapSeq is the journal sequence the snapshot on disk reflects.
	snapSeq uint64
}

// Init creates the store directory and its journal if they do not exist.
// It is safe to call on an existing store.
func Init(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, CheckpointsDir), 0o755); err != nil {
		return fmt.Errorf("create store %s: %w", dir, err)
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
// replays its journal.
func Open(cfg Config, log hclog.Logger) (*Store, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if _, err := os.Stat(cfg.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open store %s: %w", cfg.Dir, ErrNotInitialized)
	}
	s := &Store{cfg: cfg, log: log, runs: make(map[string]*Run), nextBatch: 1,
		pending: new(bytes.Buffer), spare: new(bytes.Buffer)}
	s.flushed = sync.NewCond(&s.mu)
	if !cfg.ReadOnly {
		if err := s.acquire(); err != nil {
			return nil, err
		}
	}
	if err := s.replay(); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

func (s *Store) acquire() error {
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

func (s *Store) release() {
	if s.lock != nil {
		_ = os.Remove(s.path(OwnerFile))
		_ = s.lock.Unlock()
		s.lock = nil
	}
}

// replay reads the journal, rebuilds the runs and, for a writer, cuts off a
// torn tail and opens the journal for appending.
func (s *Store) replay() error {
	name := s.path(JournalFile)
	flag := os.O_RDONLY
	if !s.cfg.ReadOnly {
		flag = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		if s.cfg.ReadOnly && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open journal: %w", err)
	}
	good, err := s.readJournal(f, name)
	if err != nil {
		_ = f.Close()
		return err
	}
	if s.cfg.ReadOnly {
		return f.Close()
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("seek journal: %w", err)
	}
	if end > good {
		s.log.Warn("dropping torn journal tail", "file", name, "offset", good, "bytes", end-good)
		if err := f.Truncate(good); err != nil {
			_ = f.Close()
			return fmt.Errorf("truncate torn journal tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return fmt.Errorf("fsync journal: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return fmt.Errorf("seek journal: %w", err)
	}
	if s.cfg.WrapJournal != nil {
		s.journal = s.cfg.WrapJournal(f)
	} else {
		s.journal = f
	}
	return nil
}

// readJournal applies every good record and returns the offset just past
// the last one. A bad record followed by a good one is corruption.
func (s *Store) readJournal(r io.Reader, name string) (good int64, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var (
		offset  int64
		line    int
		badLine int
		badWhy  error
	)
	for {
		raw, readErr := br.ReadSlice('\n')
		n := int64(len(raw))
		oversized := false
		if errors.Is(readErr, bufio.ErrBufferFull) {
			// A long record: gather it whole, or, past what a record can be,
			// only find where it ends.
			full := append([]byte(nil), raw...)
			for errors.Is(readErr, bufio.ErrBufferFull) {
				raw, readErr = br.ReadSlice('\n')
				n += int64(len(raw))
				if n > maxReadRecordBytes {
					oversized, full = true, nil
				} else {
					full = append(full, raw...)
				}
			}
			raw = full
			if oversized {
				raw = raw[:0:0]
				if readErr == nil {
					// Complete, so not torn: refuse it rather than cut it off.
					return 0, fmt.Errorf("%s:%d: %w: a record of %d bytes, more than the %d this version reads (the file was left untouched)",
						name, line+1, ErrCorrupt, n, maxReadRecordBytes)
				}
			}
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return 0, fmt.Errorf("read journal %s: %w", name, readErr)
		}
		if n == 0 && readErr != nil {
			break
		}
		line++
		complete := readErr == nil && !oversized
		var why error
		var rec Record
		switch {
		case !complete:
			why = errors.New("record has no end of line")
		case len(bytes.TrimSpace(raw)) == 0:
			why = errors.New("empty line")
		default:
			if err := json.Unmarshal(raw, &rec); err != nil {
				why = err
			} else if rec.Seq != s.seq+1 {
				why = fmt.Errorf("sequence %d after %d", rec.Seq, s.seq)
			}
		}
		if badLine != 0 && (why == nil || rec.Seq != 0) {
			// A record after a bad one: the bad one is not a torn tail.
			return 0, fmt.Errorf("%s:%d: %w: %v (records follow it; the file was left untouched)",
				name, badLine, ErrCorrupt, badWhy)
		}
		if why == nil {
			if err := apply(s.runs, &rec); err != nil {
				return 0, fmt.Errorf("%s:%d: %w: %v", name, line, ErrCorrupt, err)
			}
			s.seq = rec.Seq
			good = offset + n
		} else if badLine == 0 {
			badLine, badWhy = line, why
		}
		offset += n
		if readErr != nil {
			break
		}
	}
	if badLine != 0 && s.cfg.ReadOnly {
		s.log.Debug("journal has an unfinished last record", "file", name, "line", badLine)
	}
	return good, nil
}

// Append writes recs to the journal and makes them durable before it
// returns. It fills in Seq and, when zero, Time.
//
// Concurrent callers share fsyncs (group commit): while one caller's batch
// is being written and synced, the records of the others gather, and the
// next write and fsync cover all of them. Each caller still returns only
// once its own records are on disk.
func (s *Store) Append(ctx context.Context, recs ...*Record) error {
	return s.append(ctx, true, recs)
}

// AppendLazy adds recs to the journal without waiting for the disk. They
// are written with the next batch (at once when no write is under way) and
// made durable by the next Append, so a crash may lose them. Use it only for
// records whose loss a resume tolerates: the start of an idempotent step's
// attempt (lost, the step simply runs again).
func (s *Store) AppendLazy(ctx context.Context, recs ...*Record) error {
	return s.append(ctx, false, recs)
}

func (s *Store) append(ctx context.Context, sync bool, recs []*Record) error {
	if s.cfg.ReadOnly {
		return errors.New("append to a store opened read-only")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.cfg.NoGroupCommit {
		s.serial.Lock()
		defer s.serial.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.journal == nil {
		return errors.New("append to a closed store")
	}
	if err := validate(s.runs, recs); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	now := s.cfg.Now().UTC()
	mark := s.pending.Len()
	seq := s.seq
	for _, rec := range recs {
		seq++
		rec.Seq = seq
		if rec.Time.IsZero() {
			rec.Time = now
		}
		before := s.pending.Len()
		if err := jsonenc.Append(s.pending, rec); err != nil {
			s.pending.Truncate(mark)
			return fmt.Errorf("encode %s record: %w", rec.Type, err)
		}
		if n := s.pending.Len() - before; n > MaxRecordBytes {
			s.pending.Truncate(mark)
			return recordTooLarge(rec, n)
		}
	}
	// The records are in the batch; the in-memory state follows at once
	// (validate made sure apply cannot fail), so that the next caller
	// validates against it.
	for _, rec := range recs {
		_ = apply(s.runs, rec)
	}
	s.seq = seq
	s.stats.Records += uint64(len(recs))
	if sync {
		s.pendingSync = true
	}
	batch := s.nextBatch
	if !sync {
		// Written by the flush under way, or by the one a waiting Append
		// starts; otherwise write it now, without fsync and without waiting
		// for anybody's.
		if !s.flushing && !s.pendingSync {
			s.flush()
		}
		return s.failed
	}
	for s.doneBatch < batch {
		if s.failed != nil {
			return s.failed
		}
		if !s.flushing {
			s.flush()
			continue
		}
		s.flushed.Wait()
	}
	return s.failed
}

// flush writes the pending batch, and fsyncs it if any of its records asked
// for that; records that gathered meanwhile and need no fsync are written in
// further rounds (records that need one are left to their waiters, one of
// whom flushes next). It is called with s.mu held and releases it during the
// I/O, so that other callers can fill the next batch meanwhile.
func (s *Store) flush() {
	for {
		s.flushOnce()
		if s.failed != nil || s.pendingSync || s.pending.Len() == 0 {
			return
		}
	}
}

func (s *Store) flushOnce() {
	s.flushing = true
	batch := s.nextBatch
	s.nextBatch++
	buf := s.pending
	s.pending, s.spare = s.spare, nil
	needSync := s.pendingSync
	s.pendingSync = false
	journal := s.journal
	s.mu.Unlock()

	_, err := journal.Write(buf.Bytes())
	if err != nil {
		err = fmt.Errorf("write journal: %w", err)
	} else if needSync {
		if err = journal.Sync(); err != nil {
			err = fmt.Errorf("fsync journal: %w", err)
		}
	}

	s.mu.Lock()
	s.stats.Writes++
	if needSync {
		s.stats.Syncs++
	}
	buf.Reset()
	s.spare = buf
	if err != nil {
		// What reached the file is unknown (and after a failed fsync the
		// page cache may lie): refuse every later record until the store is
		// reopened and its tail checked.
		s.failed = err
		_ = s.journal.Close()
		s.journal = nil
	}
	s.doneBatch = batch
	s.flushing = false
	s.flushed.Broadcast()
}

// Stats counts the journal's I/O since Open.
type Stats struct {
	// Records is the number of records appended.
	Records uint64
	// Writes and Syncs count write and fsync calls on the journal; with
	// concurrent appenders one of each covers many records.
	Writes, Syncs uint64
}

// Stats returns the journal's I/O counts since Open.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Runs returns every run, oldest first.
func (s *Store) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Run, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, r.Clone())
	}
	slices.SortFunc(out, func(a, b Run) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Run returns the run with the given id.
func (s *Store) Run(id string) (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return Run{}, false
	}
	return r.Clone(), true
}

// snapshot is the document in agent-state.json.
type snapshot struct {
	Version    int       `json:"version"`
	JournalSeq uint64    `json:"journal_seq"`
	UpdatedAt  time.Time `json:"updated_at"`
	Runs       []Run     `json:"runs"`
}

// WriteSnapshot replaces agent-state.json with what the journal says now.
func (s *Store) WriteSnapshot() error {
	if s.cfg.ReadOnly {
		return errors.New("snapshot of a store opened read-only")
	}
	s.mu.Lock()
	seq, written := s.seq, s.snapSeq
	s.mu.Unlock()
	if seq == written && seq != 0 {
		return nil // nothing happened since the last snapshot
	}
	runs := s.Runs()
	b, err := jsonenc.MarshalIndent(snapshot{Version: 1, JournalSeq: seq, UpdatedAt: s.cfg.Now().UTC(), Runs: runs})
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

// Close writes the snapshot and releases the store.
func (s *Store) Close() error {
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
	s.mu.Unlock()
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
	s := &Store{cfg: Config{Dir: dir}}
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
