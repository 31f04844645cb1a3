// Package pgstore is 12fa's PostgreSQL store: runs, their journal records
// and blobs in one database that many processes share
// (../shared/research/scale-out.md has the design and its sources).
//
// A run is written by one holder of its lease at a time. Every append is
// fenced: the statement that inserts a run's records also checks, in its
// WHERE clause, that the run's epoch is the one the writer leased and that
// its last sequence number is the one the writer saw, so a writer whose
// lease was taken over writes nothing more (ErrLeaseLost). Concurrent
// appends share a transaction and its commit (group commit). The fold of
// records into runs is state's (state.Validate, state.Apply), the same as
// the file store's, and the store passes the same conformance suite
// (state/statetest).
//
// pgstore imports state, abi, 12fa's internal helpers, pgx and go-hclog.
//
// # Caveats
//
//   - Blobs are never removed by Prune.
package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/state"
)

// ErrLeaseLost is returned by Append for a run whose lease another holder
// took: nothing of the batch was written.
var ErrLeaseLost = errors.New("the run's lease was lost to another holder")

// Config configures a Store.
type Config struct {
	// URL is the database, postgres://…
	URL string
	// Now returns the time recorded in records; time.Now when nil.
	Now func() time.Time
	// MaxConns bounds the connection pool (16 when 0).
	MaxConns int32
	// Heartbeat is how often a store holding leases tells the database it
	// is alive (DefaultHeartbeat when 0); Lease is how long after its last
	// heartbeat its runs may be taken over (DefaultLease when 0). Margin:
	// the store gives its leases up (refuses appends, closes Lost) Margin
	// before they could expire, counted from the send time of its last
	// acknowledged heartbeat (Lease/5 when 0).
	Heartbeat, Lease, Margin time.Duration
	// Worker makes the store a worker's: it reaps dead holders' runs, and
	// a run it stops executing before it finished (interrupted, paused) goes
	// back to the queue instead of being parked. Concurrency is recorded
	// in the workers table for display.
	Worker      bool
	Concurrency int
}

// Store is the PostgreSQL store. Its methods are safe for concurrent use.
type Store struct {
	cfg  Config
	log  hclog.Logger
	pool *pgxpool.Pool
	// hb is the heartbeat's and the listener's own pool: nothing the runs
	// do can hold them up.
	hb *pgxpool.Pool
	// me names this store's holder of leases (a row in workers).
	me string

	stop chan struct{}
	wg   sync.WaitGroup

	mu sync.Mutex
	// claims are the runs executed in this process.
	claims map[string]bool
	// leases are the runs this store holds, with their folded state in
	// runs (what the next append is validated against).
	leases map[string]*lease
	runs   map[string]*state.Run

	// Group commit: appends gather in pending while a transaction of the
	// ones before is under way.
	pending  []*batch
	lazy     *time.Timer
	flushing bool
	flushed  *sync.Cond
	stats    state.Stats

	// registered: the workers row exists and the heartbeat runs; trust is
	// the local deadline of every lease (see Config.Margin).
	registered bool
	trust      time.Time
	leaseStats LeaseStats
	wake       chan struct{}
	// taking counts the Dequeues whose queries are under way (without
	// s.mu); handingBack holds new ones back while handBackStray runs.
	taking      int
	handingBack bool
}

type lease struct {
	epoch int64
	last  uint64 // the last seq written (or being written)
	// fresh: the run's row is inserted by the next flush.
	fresh bool
	// lost: given up; gone is closed then.
	lost bool
	// releasing: handed back by the next flush.
	releasing bool
	gone      chan struct{}
}

func newLease(epoch int64, last uint64) *lease {
	return &lease{epoch: epoch, last: last, gone: make(chan struct{})}
}

// batch is one caller's records.
type batch struct {
	recs   []*state.Record
	bodies [][]byte // recs encoded
	// release names a run whose lease the batch hands back (it has no
	// records then), to the queue state to (see releaseLocked).
	release, to string
	sync        bool
	done        bool
	err         error
}

// Open connects to cfg.URL and migrates its schema when it is older than
// this version's.
func Open(ctx context.Context, cfg Config, log hclog.Logger) (*Store, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Margin <= 0 {
		cfg.Margin = cfg.Lease / 5
	}
	if cfg.Lease <= cfg.Heartbeat+cfg.Margin {
		return nil, fmt.Errorf("pgstore: a lease of %s is too short for a heartbeat every %s and a margin of %s", cfg.Lease, cfg.Heartbeat, cfg.Margin)
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	if pc.MaxConns == 0 {
		pc.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if _, err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	hc := pc.Copy()
	hc.MaxConns, hc.MinConns = 2, 0
	hb, err := pgxpool.NewWithConfig(ctx, hc)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	s := &Store{cfg: cfg, log: log, pool: pool, hb: hb, me: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:])),
		stop: make(chan struct{}), claims: map[string]bool{}, leases: map[string]*lease{}, runs: map[string]*state.Run{}}
	s.flushed = sync.NewCond(&s.mu)
	return s, nil
}

var _ state.Store = (*Store)(nil)

// Append makes recs durable (committed) before it returns.
func (s *Store) Append(ctx context.Context, recs ...*state.Record) error {
	return s.append(ctx, true, recs)
}

// AppendLazy commits recs without waiting for the commit to reach the disk
// (synchronous_commit off): a crash of the server may lose them, never
// reorder them.
func (s *Store) AppendLazy(ctx context.Context, recs ...*state.Record) error {
	return s.append(ctx, false, recs)
}

func (s *Store) append(ctx context.Context, sync bool, recs []*state.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, rec := range recs {
		if state.Internal(rec.Type) {
			return fmt.Errorf("append: %s records are the store's own", rec.Type)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.trusted() {
		s.leaseStats.Refused++
		return fmt.Errorf("append: %w (no heartbeat was acknowledged within the lease)", ErrLeaseLost)
	}
	// Lease every run named that is not new.
	for _, rec := range recs {
		if l, held := s.leases[rec.Run]; held && l.lost {
			s.leaseStats.Refused++
			return fmt.Errorf("append to run %s: %w", rec.Run, ErrLeaseLost)
		} else if held || rec.Run == "" {
			continue
		}
		if rec.Type == state.EventRunStarted {
			if err := state.ValidRunID(rec.Run); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			var n int
			if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM runs WHERE id = $1", rec.Run).Scan(&n); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			if n > 0 {
				return fmt.Errorf("append: run %q started twice", rec.Run)
			}
			if err := s.register(ctx); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			continue
		}
		if err := s.acquire(ctx, rec.Run); err != nil && !errors.Is(err, state.ErrUnknownRun) {
			return fmt.Errorf("append: %w", err)
		}
	}
	if err := state.Validate(s.runs, recs); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	// Each record is encoded once, with the sequence number it gets when
	// the batch is accepted.
	now := s.cfg.Now().UTC()
	bodies := make([][]byte, len(recs))
	for i, rec := range recs {
		if rec.Time.IsZero() {
			rec.Time = now
		}
		var last uint64
		if l := s.leases[rec.Run]; l != nil && rec.Type != state.EventRunStarted {
			last = l.last
		}
		for _, p := range recs[:i] {
			if p.Run == rec.Run {
				last++
			}
		}
		rec.Seq = last + 1
		b, err := jsonenc.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode %s record: %w", rec.Type, err)
		}
		if len(b)+1 > state.MaxRecordBytes {
			return &state.RecordTooLargeError{Type: rec.Type, Run: rec.Run, Step: rec.Step, Bytes: len(b) + 1}
		}
		bodies[i] = b
	}
	for _, rec := range recs {
		l := s.leases[rec.Run]
		if rec.Type == state.EventRunStarted {
			l = newLease(1, 0)
			l.fresh = true
			s.leases[rec.Run] = l
		}
		l.last = rec.Seq
		_ = state.Apply(s.runs, rec)
	}
	s.stats.Records += uint64(len(recs))
	b := &batch{recs: recs, bodies: bodies, sync: sync}
	s.pending = append(s.pending, b)
	if !sync {
		// Written with the next Append's batch (one round trip for both),
		// or after lazyDelay when none comes.
		if s.lazy == nil {
			s.lazy = time.AfterFunc(lazyDelay, s.flushLazy)
		} else {
			s.lazy.Reset(lazyDelay)
		}
		return nil
	}
	s.waitLocked(ctx, b)
	return b.err
}

// waitLocked waits until batch b is written, flushing when no flush is
// under way. It is called with s.mu held.
func (s *Store) waitLocked(ctx context.Context, b *batch) {
	for !b.done {
		if !s.flushing {
			s.flush(ctx)
			continue
		}
		s.flushed.Wait()
	}
}

// lazyDelay bounds how long lazily appended records wait for an Append to
// carry them before they are written on their own.
const lazyDelay = 50 * time.Millisecond

// flushLazy writes the lazy records no Append carried.
func (s *Store) flushLazy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.flushing && len(s.pending) > 0 {
		s.flush(context.Background())
	}
}

// drainLocked writes every pending batch and waits for the flush under
// way. It is called with s.mu held.
func (s *Store) drainLocked(ctx context.Context) {
	for s.flushing || len(s.pending) > 0 {
		if !s.flushing {
			s.flush(ctx)
			continue
		}
		s.flushed.Wait()
	}
}

// acquire leases run id to this store and folds its records. It is called
// with s.mu held. ErrUnknownRun: there is no such run; state.ErrClaimed:
// another holder has it.
func (s *Store) acquire(ctx context.Context, id string) error {
	if err := s.register(ctx); err != nil {
		return err
	}
	if !s.trusted() {
		return fmt.Errorf("run %s: %w (no heartbeat was acknowledged within the lease)", id, ErrLeaseLost)
	}
	var epoch int64
	var last uint64
	err := s.pool.QueryRow(ctx, `UPDATE runs SET state = 'leased', owner = $2, epoch = epoch + 1, claims = claims + 1
		WHERE id = $1 AND (state <> 'leased' OR owner = $2 OR owner IS NULL) RETURNING epoch, last_seq`, id, s.me).Scan(&epoch, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		var n int
		if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM runs WHERE id = $1", id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w %q", state.ErrUnknownRun, id)
		}
		return fmt.Errorf("run %s: %w (its lease is held by another)", id, state.ErrClaimed)
	}
	if err != nil {
		return err
	}
	r, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	s.leases[id] = newLease(epoch, last)
	s.runs[id] = r
	return nil
}

// load folds run id's records.
func (s *Store) load(ctx context.Context, id string) (*state.Run, error) {
	runs, errs, err := s.loadAll(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if err := errs[id]; err != nil {
		return nil, err
	}
	return runs[id], nil
}

// loadAll folds the records of the runs ids in one query. errs holds,
// by run, why one could not be folded (state.ErrCorrupt, ErrUnknownRun);
// err is the query's.
func (s *Store) loadAll(ctx context.Context, ids []string) (runs map[string]*state.Run, errs map[string]error, err error) {
	rows, err := s.pool.Query(ctx, "SELECT run_id, body::text FROM records WHERE run_id = ANY($1) ORDER BY run_id, seq", ids)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	runs, errs = make(map[string]*state.Run, len(ids)), map[string]error{}
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, nil, err
		}
		if errs[id] != nil {
			continue
		}
		var rec state.Record
		if err := json.Unmarshal([]byte(body), &rec); err != nil {
			errs[id] = fmt.Errorf("run %s record: %w: %v", id, state.ErrCorrupt, err)
			continue
		}
		if rec.Run != id {
			errs[id] = fmt.Errorf("run %s record %d: %w: it names run %q", id, rec.Seq, state.ErrCorrupt, rec.Run)
			continue
		}
		if err := state.Apply(runs, &rec); err != nil {
			errs[id] = fmt.Errorf("run %s record %d: %w: %v", id, rec.Seq, state.ErrCorrupt, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		if _, ok := runs[id]; !ok && errs[id] == nil {
			errs[id] = fmt.Errorf("%w %q", state.ErrUnknownRun, id)
		}
		if errs[id] != nil {
			delete(runs, id)
		}
	}
	return runs, errs, nil
}

// flush writes the pending batches in one transaction, fenced run by run.
// It is called with s.mu held and releases it during the I/O.
func (s *Store) flush(ctx context.Context) {
	s.flushing = true
	// A batch of a run whose lease was lost (or dropped) while it waited
	// is refused, not written.
	var batches []*batch
	for _, b := range s.pending {
		if b.release != "" {
			if l := s.leases[b.release]; l == nil || l.lost || s.runs[b.release] == nil {
				// Lost: the heartbeat hands it back, or a reaper did.
				s.dropLease(b.release, false)
				b.done = true
				continue
			}
		}
		if slices.ContainsFunc(b.recs, func(rec *state.Record) bool {
			l := s.leases[rec.Run]
			return l == nil || l.lost || s.runs[rec.Run] == nil
		}) {
			b.done, b.err = true, fmt.Errorf("append: %w", ErrLeaseLost)
			s.leaseStats.Refused++
			continue
		}
		batches = append(batches, b)
	}
	s.pending = nil
	if len(batches) == 0 {
		s.flushing = false
		s.flushed.Broadcast()
		return
	}
	sync := slices.ContainsFunc(batches, func(b *batch) bool { return b.sync })
	var ops []*writeOp
	byRun := map[string]*writeOp{}
	opOf := func(run string) *writeOp {
		op := byRun[run]
		if op == nil {
			l := s.leases[run]
			op = &writeOp{run: run, epoch: l.epoch, fresh: l.fresh, first: l.last + 1, last: l.last}
			l.fresh = false
			byRun[run] = op
			ops = append(ops, op)
		}
		return op
	}
	for _, b := range batches {
		for i, rec := range b.recs {
			op := opOf(rec.Run)
			if len(op.recs) == 0 {
				op.first = rec.Seq
			}
			op.recs = append(op.recs, rec)
			op.bodies = append(op.bodies, b.bodies[i])
			op.last = rec.Seq
		}
		if b.release != "" {
			op := opOf(b.release)
			op.release, op.to = true, b.to
		}
	}
	for _, op := range ops {
		r := s.runs[op.run]
		op.info, op.created, op.updated = r.Summary(), r.CreatedAt, r.UpdatedAt
		if op.release {
			op.state = s.releaseState(op.info.Status, op.to)
		}
	}
	deadline := s.trust
	s.mu.Unlock()

	wctx := context.WithoutCancel(ctx)
	lost, err := s.write(wctx, ops, sync, false)
	// A connection lost (the server restarting, say) leaves the commit
	// ambiguous: write again with the same fence until the local
	// deadline; a write that finds its records committed is done.
	for try := 1; err != nil && retryable(err) && time.Now().Add(s.cfg.Heartbeat).Before(deadline); try++ {
		s.log.Debug("append retried", "try", try, "error", err)
		time.Sleep(min(time.Duration(try)*100*time.Millisecond, time.Second))
		lost, err = s.write(wctx, ops, sync, true)
	}

	s.mu.Lock()
	s.stats.Writes++
	if sync {
		s.stats.Syncs++
	}
	for _, b := range batches {
		b.done = true
		b.err = err
		if err == nil {
			for _, rec := range b.recs {
				if lost[rec.Run] {
					b.err = fmt.Errorf("append to run %s: %w", rec.Run, ErrLeaseLost)
					s.leaseStats.Refused++
				}
			}
		}
	}
	for _, op := range ops {
		switch {
		case err != nil || lost[op.run]:
			// What the run holds is unknown (or another's): fold it
			// again when next needed. Still this store's in the
			// database, a run dropped after an error is handed back at
			// the next heartbeat.
			s.dropLease(op.run, true)
		case op.release:
			s.dropLease(op.run, false)
		}
	}
	s.flushing = false
	s.flushed.Broadcast()
}

// writeOp is one run's records in a flush.
type writeOp struct {
	run   string
	epoch int64
	// fresh: the run starts in this write (its row is inserted).
	fresh       bool
	first, last uint64
	recs        []*state.Record
	bodies      [][]byte
	// release: the write hands the lease back, to the queue state state.
	release          bool
	to, state        string
	info             state.RunInfo
	created, updated time.Time
}

// write commits ops in one transaction and returns the runs whose fence
// refused them.
// retry: an earlier try's commit may have happened.
func (s *Store) write(ctx context.Context, ops []*writeOp, sync, retry bool) (lost map[string]bool, err error) {
	// One round trip, two statements whatever the number of runs: the
	// new runs' rows, then every run's fence and records (the statements
	// of a batch run in one transaction, implicit or the explicit one that
	// turns synchronous commit off for it, so all of it commits or none).
	var fresh freshRows
	var fence fenceRows
	for _, op := range ops {
		if op.fresh {
			fresh.add(op)
		}
		fence.add(op)
	}
	b := &pgx.Batch{}
	if !sync {
		b.Queue("BEGIN")
		b.Queue("SET LOCAL synchronous_commit = off")
	}
	if len(fresh.id) > 0 {
		b.Queue(`INSERT INTO runs (id, workflow, manifest, state, status, owner, epoch, claims, last_seq, created_at, updated_at)
			SELECT u.id, u.workflow, u.manifest, 'leased', u.status, $6, 1, 1, 0, u.created, u.created
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u(id, workflow, manifest, status, created)
			ON CONFLICT (id) DO NOTHING`, fresh.id, fresh.workflow, fresh.manifest, fresh.status, fresh.created, s.me)
	}
	// The fence: the statement that inserts a run's records checks, for
	// that run, the epoch and the last sequence number the writer saw,
	// and writes nothing of the run when either moved. It returns the
	// runs it wrote. One run (a run alone, W1) has a statement of its own:
	// the server does a third less for it than for the join of the many.
	if len(ops) == 1 {
		op := ops[0]
		b.Queue(`WITH f AS (
			UPDATE runs SET last_seq = $3, status = $5, steps = $6, done = $7, cause = $8, error = $9, updated_at = $10, finished_at = $11,
				state = coalesce($18, state), owner = CASE WHEN $18 IS NULL THEN owner END,
				available_at = CASE WHEN $18 IS NULL THEN available_at ELSE now() END
			WHERE id = $1 AND epoch = $2 AND state = 'leased' AND owner = $12 AND last_seq = $4 - 1 RETURNING id),
		ins AS (
			INSERT INTO records (run_id, seq, epoch, type, step, attempt, body)
			SELECT $1, r.seq, $2, r.type, r.step, r.attempt, r.body::json
			FROM f, unnest($13::bigint[], $14::text[], $15::text[], $16::int[], $17::text[]) AS r(seq, type, step, attempt, body))
		SELECT id FROM f`,
			op.run, op.epoch, int64(op.last), int64(op.first), string(op.info.Status), int32(op.info.Steps), int32(op.info.Done),
			string(op.info.Cause), op.info.Error, op.updated, finishedAt(op), s.me,
			fence.rseq, fence.rtype, fence.rstep, fence.rattempt, fence.rbody, fence.state[0])
	} else {
		b.Queue(`WITH u AS (
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::int[], $7::int[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $19::text[])
			AS u(id, epoch, first, last, status, steps, done, cause, error, updated, finished, state)),
		f AS (
			UPDATE runs SET last_seq = u.last, status = u.status, steps = u.steps, done = u.done, cause = u.cause, error = u.error,
				updated_at = u.updated, finished_at = u.finished,
				state = coalesce(u.state, runs.state), owner = CASE WHEN u.state IS NULL THEN runs.owner END,
				available_at = CASE WHEN u.state IS NULL THEN runs.available_at ELSE now() END
			FROM u WHERE runs.id = u.id AND runs.epoch = u.epoch AND runs.state = 'leased' AND runs.owner = $12 AND runs.last_seq = u.first - 1
			RETURNING runs.id, runs.epoch),
		ins AS (
			INSERT INTO records (run_id, seq, epoch, type, step, attempt, body)
			SELECT r.run, r.seq, f.epoch, r.type, r.step, r.attempt, r.body::json
			FROM unnest($13::text[], $14::bigint[], $15::text[], $16::text[], $17::int[], $18::text[]) AS r(run, seq, type, step, attempt, body)
			JOIN f ON f.id = r.run)
		SELECT id FROM f`,
			fence.id, fence.epoch, fence.first, fence.last, fence.status, fence.steps, fence.done, fence.cause, fence.error, fence.updated, fence.finished,
			s.me, fence.rrun, fence.rseq, fence.rtype, fence.rstep, fence.rattempt, fence.rbody, fence.state)
	}
	if !sync {
		b.Queue("COMMIT")
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	wrote := make(map[string]bool, len(ops))
	err = func() error {
		if !sync {
			for range 2 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
		}
		if len(fresh.id) > 0 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("start runs: %w", err)
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			wrote[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !sync {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("commit: %w", cerr)
	}
	if err != nil {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			// A failed explicit transaction: the connection is not
			// reused.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("append: %w", err)
	}
	lost = map[string]bool{}
	for _, op := range ops {
		if !wrote[op.run] && !(retry && s.committed(ctx, conn.Conn(), op)) {
			lost[op.run] = true
		}
	}
	return lost, nil
}

// freshRows are the columns of the runs rows a write inserts.
type freshRows struct {
	id, workflow, manifest, status []string
	created                        []time.Time
}

func (f *freshRows) add(op *writeOp) {
	f.id = append(f.id, op.run)
	f.workflow = append(f.workflow, op.info.Workflow)
	f.manifest = append(f.manifest, op.info.Manifest)
	f.status = append(f.status, string(op.info.Status))
	f.created = append(f.created, op.created)
}

// fenceRows are a write's fence, one row per run, and its records.
type fenceRows struct {
	id                   []string
	epoch, first, last   []int64
	status, cause, error []string
	steps, done          []int32
	updated              []time.Time
	finished             []*time.Time
	state                []*string // the queue state a release hands back to, NULL for none
	rrun, rtype, rbody   []string
	rstep                []*string
	rseq                 []int64
	rattempt             []int32
}

func (f *fenceRows) add(op *writeOp) {
	f.id = append(f.id, op.run)
	f.epoch = append(f.epoch, op.epoch)
	f.first = append(f.first, int64(op.first))
	f.last = append(f.last, int64(op.last))
	f.status = append(f.status, string(op.info.Status))
	f.steps = append(f.steps, int32(op.info.Steps))
	f.done = append(f.done, int32(op.info.Done))
	f.cause = append(f.cause, string(op.info.Cause))
	f.error = append(f.error, op.info.Error)
	f.updated = append(f.updated, op.updated)
	f.finished = append(f.finished, finishedAt(op))
	var st *string
	if op.release {
		st = &op.state
	}
	f.state = append(f.state, st)
	for i, rec := range op.recs {
		var step *string
		if rec.Step != "" {
			step = &rec.Step
		}
		f.rrun = append(f.rrun, op.run)
		f.rseq = append(f.rseq, int64(rec.Seq))
		f.rtype = append(f.rtype, string(rec.Type))
		f.rstep = append(f.rstep, step)
		f.rattempt = append(f.rattempt, int32(rec.Attempt))
		f.rbody = append(f.rbody, string(op.bodies[i]))
	}
}

// finishedAt is the runs row's finished_at for op: its updated_at once the
// run finished, NULL before (see migration 0003).
func finishedAt(op *writeOp) *time.Time {
	if op.info.Status.Finished() {
		return &op.updated
	}
	return nil
}

// committed reports whether op's records are the run's last ones under
// this store's lease: an earlier try committed them.
func (s *Store) committed(ctx context.Context, tx *pgx.Conn, op *writeOp) bool {
	var epoch int64
	var last uint64
	var owner *string
	var st string
	if err := tx.QueryRow(ctx, "SELECT epoch, owner, last_seq, state FROM runs WHERE id = $1", op.run).Scan(&epoch, &owner, &last, &st); err != nil {
		return false
	}
	if op.release {
		// Handed back (and maybe leased again since, by a new epoch).
		return epoch == op.epoch && owner == nil && st == op.state && last == op.last
	}
	return epoch == op.epoch && owner != nil && *owner == s.me && last == op.last
}

// retryable reports whether err lost the connection (or the server is
// shutting down) rather than being the server's answer to the statement.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	// 08: connection exception; 57: operator intervention (shutting down,
	// starting); 53: insufficient resources (too many connections).
	return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57") || strings.HasPrefix(pe.Code, "53")
}

// Run returns a run: the state this store folded while it holds the run's
// lease, otherwise the fold of its records.
func (s *Store) Run(id string) (state.Run, error) {
	s.mu.Lock()
	if r, ok := s.runs[id]; ok {
		c := r.Clone()
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	r, err := s.load(context.Background(), id)
	if err != nil {
		return state.Run{}, err
	}
	return *r, nil
}

// List returns the runs o selects, the most recently updated first.
func (s *Store) List(o state.ListOptions) ([]state.RunInfo, error) {
	var statuses []string
	for _, st := range o.Status {
		statuses = append(statuses, string(st))
	}
	limit := any(nil)
	if o.Limit > 0 {
		limit = o.Limit
	}
	// Unfinished runs (few), merged with the most recently finished ones
	// (an index scan that stops at the limit): no index covers updated_at,
	// which every append changes (migration 0003).
	match := `(coalesce(cardinality($1::text[]), 0) = 0 OR status = ANY($1)) AND ($2 = '' OR workflow = $2) AND ($3 = '' OR manifest = $3)`
	rows, err := s.pool.Query(context.Background(), `SELECT `+infoColumns+` FROM (
			(SELECT * FROM runs WHERE finished_at IS NULL AND `+match+`)
			UNION ALL
			(SELECT * FROM runs WHERE finished_at IS NOT NULL AND `+match+` ORDER BY finished_at DESC, id DESC LIMIT $4)
		) r ORDER BY updated_at DESC, id DESC LIMIT $4`, statuses, o.Workflow, o.Manifest, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []state.RunInfo
	for rows.Next() {
		in, err := scanInfo(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// infoColumns are the columns scanInfo reads, in its order.
const infoColumns = "id, workflow, manifest, status, created_at, updated_at, steps, done, cause, error"

// scanInfo reads a row of infoColumns.
func scanInfo(rows pgx.Rows) (state.RunInfo, error) {
	var in state.RunInfo
	var status, cause string
	err := rows.Scan(&in.ID, &in.Workflow, &in.Manifest, &status, &in.CreatedAt, &in.UpdatedAt, &in.Steps, &in.Done, &cause, &in.Error)
	in.Status, in.Cause = state.RunStatus(status), abi.Cause(cause)
	return in, err
}

// Claim makes the caller the executor of run id in this process and, when
// the run exists, leases it to this store; state.ErrClaimed while another
// caller or holder has it.
func (s *Store) Claim(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims[id] {
		return fmt.Errorf("run %s: %w", id, state.ErrClaimed)
	}
	// A release under way ends first.
	for l := s.leases[id]; l != nil && l.releasing; l = s.leases[id] {
		s.flushed.Wait()
	}
	if _, held := s.leases[id]; !held {
		if err := s.acquire(context.Background(), id); err != nil && !errors.Is(err, state.ErrUnknownRun) {
			return err
		}
	}
	s.claims[id] = true
	return nil
}

// Release ends the claim on run id and hands its lease back: the run is
// done when it finished, parked when it waits for a person, and otherwise
// (interrupted, paused) parked, or queued again for any worker when this
// is a worker's store (Config.Worker).
func (s *Store) Release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, id)
	s.releaseLocked(context.Background(), id, "")
}

// releaseLocked hands run id's lease back, to the queue state to (or, when
// empty, the one its status calls for), with the next group commit. A lost
// lease is handed back by the heartbeat, or was taken already. It is
// called with s.mu held, and waits for the write.
func (s *Store) releaseLocked(ctx context.Context, id, to string) {
	if b := s.queueRelease(id, to); b != nil {
		s.waitLocked(ctx, b)
		if b.err != nil {
			s.log.Warn("lease not handed back yet (the next heartbeat will)", "run", id, "error", b.err)
		}
	}
}

// queueRelease adds the release of run id's lease to the pending batches
// and returns it, or nil when there is nothing to hand back.
func (s *Store) queueRelease(id, to string) *batch {
	l, ok := s.leases[id]
	if !ok || l.lost {
		s.dropLease(id, false)
		return nil
	}
	if l.releasing {
		for _, b := range s.pending {
			if b.release == id {
				return b
			}
		}
		return nil // under way
	}
	l.releasing = true
	b := &batch{release: id, to: to, sync: true}
	s.pending = append(s.pending, b)
	return b
}

// releaseState is the queue state a run released in status st goes to:
// to when given, else done once finished, parked while it waits for a
// person, otherwise handBack's.
func (s *Store) releaseState(st state.RunStatus, to string) string {
	switch {
	case to != "":
		return to
	case st.Finished():
		return "done"
	case st == state.RunWaiting:
		return "parked"
	}
	return s.handBack()
}

// dropLease forgets run id's lease and folded state; lost: it was lost
// (or its write failed), and its Lost channel closes. A lost lease of a run
// still claimed stays, as lost, until Release: the executor's next append
// is refused rather than leasing the run again.
func (s *Store) dropLease(id string, lost bool) {
	l, ok := s.leases[id]
	if ok && !l.lost && lost {
		l.lost = true
		close(l.gone)
	}
	delete(s.runs, id)
	if !ok || !lost || !s.claims[id] {
		delete(s.leases, id)
	}
}

// Claimed counts the runs claimed in this process.
func (s *Store) Claimed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.claims)
}

// PutBlob stores b and returns its sha256 (hex).
func (s *Store) PutBlob(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	name := hex.EncodeToString(sum[:])
	_, err := s.pool.Exec(context.Background(), "INSERT INTO blobs (sha256, kind, body) VALUES ($1, 'call', $2) ON CONFLICT DO NOTHING", name, b)
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", name, err)
	}
	return name, nil
}

// Blob returns the blob named sha, checked against its name.
func (s *Store) Blob(sha string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(context.Background(), "SELECT body FROM blobs WHERE sha256 = $1", sha).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("blob %s is missing", sha)
	}
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("%w: blob %s does not hash to its name", state.ErrBlobCorrupt, sha)
	}
	return b, nil
}

// Prune removes finished runs last updated before o.OlderThan but the
// o.Keep most recent, with their records and questions, in one
// transaction, then their progress entries, then calls also with their
// ids.
func (s *Store) Prune(o state.PruneOptions, also func(runs []string) error) ([]state.RunInfo, error) {
	if o.OlderThan.IsZero() {
		return nil, nil
	}
	ctx := context.Background()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drainLocked(ctx)
	var claimed []string
	for id := range s.claims {
		claimed = append(claimed, id)
	}
	// Finished runs, but those another holder leases or this process
	// executes.
	// One statement: the runs, their records, progress entries and
	// checkpoint records go together.
	rows, err := s.pool.Query(ctx, `WITH gone AS (
			DELETE FROM runs WHERE id IN (
				SELECT id FROM runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC OFFSET $1)
			AND finished_at < $2 AND (state <> 'leased' OR owner = $3) AND NOT id = ANY(coalesce($4::text[], '{}'))
			RETURNING `+infoColumns+`),
		recs AS (DELETE FROM records WHERE run_id IN (SELECT id FROM gone)),
		prog AS (DELETE FROM progress WHERE run_id IN (SELECT id FROM gone)),
		cps AS (DELETE FROM checkpoints WHERE run_id IN (SELECT id FROM gone))
		SELECT * FROM gone`, o.Keep, o.OlderThan, s.me, claimed)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	var gone []state.RunInfo
	for rows.Next() {
		in, err := scanInfo(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("prune: %w", err)
		}
		gone = append(gone, in)
		s.dropLease(in.ID, false)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if len(gone) > 0 {
		ids := make([]string, len(gone))
		for i, in := range gone {
			ids[i] = in.ID
		}
		if also == nil {
			return gone, nil
		}
		if err := also(ids); err != nil {
			return gone, fmt.Errorf("prune: %w", err)
		}
	}
	return gone, nil
}

// WriteSnapshot does nothing: the database is the one document.
func (s *Store) WriteSnapshot() error { return nil }

// Stats counts the store's transactions (Writes), those committed
// durably (Syncs), and records.
func (s *Store) Stats() state.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close hands back the leases this store holds and closes its
// connections.
func (s *Store) Close() error {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	s.drainLocked(context.Background())
	if s.lazy != nil {
		s.lazy.Stop()
	}
	// Every lease handed back in one write.
	for id := range s.leases {
		s.queueRelease(id, "")
	}
	s.drainLocked(context.Background())
	var err error
	if s.registered {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Lease)
		if err = s.handBackStray(ctx); err == nil {
			_, err = s.hb.Exec(ctx, "DELETE FROM workers WHERE id = $1", s.me)
		}
		cancel()
	}
	s.mu.Unlock()
	s.hb.Close()
	s.pool.Close()
	if err != nil {
		return fmt.Errorf("pgstore: close: %w", err)
	}
	return nil
}

// Records returns run id's records as they are stored, one journal line
// each, in order: what `12fa export` writes (a journal the file store
// reads).
func (s *Store) Records(ctx context.Context, id string) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, "SELECT body::text FROM records WHERE run_id = $1 ORDER BY seq", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		out = append(out, []byte(body))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %q", state.ErrUnknownRun, id)
	}
	return out, nil
}

// Version returns the schema version the database is at.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, err
}
