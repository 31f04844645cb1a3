package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/12fa/12fa/state"
)

// Lease timing (../shared/research/scale-out.md, 2.3): a holder heartbeats
// every DefaultHeartbeat, and its runs may be taken over DefaultLease after
// its last acknowledged heartbeat, by the database's clock.
const (
	DefaultHeartbeat = 2 * time.Second
	DefaultLease     = 15 * time.Second
)

// Queued is a run a worker took from the queue.
type Queued struct {
	ID string
	// Bundle is the content address of the run's manifest and plugins
	// (see Submit); empty for a run started in the foreground.
	Bundle string
	// Takeovers counts the times the run was taken from a holder that
	// stopped heartbeating.
	Takeovers int
}

// LeaseStats counts what happened to this store's leases.
type LeaseStats struct {
	// Claimed counts runs taken from the queue; Lost the leases given up
	// (the local deadline passed, or a reaper declared this store dead);
	// Refused the appends refused because their lease was lost; Reaped the
	// runs of dead holders this store put back in the queue.
	Claimed, Lost, Refused, Reaped uint64
}

// register makes this store a holder of leases: a row in workers whose
// heartbeats keep its leases, and the goroutines that send them (and, for
// a worker, reap dead holders' runs). It is called with s.mu held, before
// the first lease.
func (s *Store) register(ctx context.Context) error {
	if s.registered {
		return nil
	}
	sent := time.Now()
	if err := s.insertWorker(ctx); err != nil {
		return fmt.Errorf("register as a worker: %w", err)
	}
	s.trust = sent.Add(s.cfg.Lease - s.cfg.Margin)
	s.registered = true
	s.wg.Add(2)
	go s.heartbeat()
	go s.watchdog()
	if s.cfg.Worker {
		s.wg.Add(1)
		go s.reaper()
	}
	return nil
}

func (s *Store) insertWorker(ctx context.Context) error {
	host, _ := os.Hostname()
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	_, err := s.hb.Exec(ctx, `INSERT INTO workers (id, host, pid, version, lease_ms, concurrency) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, s.me, host, os.Getpid(), version, s.cfg.Lease.Milliseconds(), s.cfg.Concurrency)
	return err
}

// trusted reports whether this store may still act on its leases: its
// last acknowledged heartbeat was sent less than Lease − Margin ago. Past
// that, it gives every lease up. It is called with s.mu held.
func (s *Store) trusted() bool {
	if !s.registered {
		return true
	}
	if time.Now().Before(s.trust) {
		return true
	}
	s.loseAll("no heartbeat was acknowledged within the lease")
	return false
}

// loseAll gives up every lease this store holds: appends to those runs are
// refused, their Lost channels close (so that their steps are cancelled),
// and the runs are handed back at the next acknowledged heartbeat (see
// handBackStray) unless a reaper took them first. It is called with s.mu
// held.
func (s *Store) loseAll(why string) {
	for id, l := range s.leases {
		if l.lost {
			continue
		}
		l.lost = true
		close(l.gone)
		s.leaseStats.Lost++
		s.log.Warn("lease given up", "run", id, "epoch", l.epoch, "reason", why)
	}
}

// heartbeat tells the database this store is alive every Heartbeat, on a
// connection of its own that no run can hold up.
func (s *Store) heartbeat() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.beat()
	}
}

func (s *Store) beat() {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Heartbeat)
	defer cancel()
	tag, err := s.hb.Exec(ctx, "UPDATE workers SET heartbeat_at = now() WHERE id = $1", s.me)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.log.Warn("heartbeat not acknowledged", "error", err)
		s.trusted()
		return
	}
	if tag.RowsAffected() == 0 {
		// A reaper declared this store dead and put its runs back in the
		// queue: they are another's now.
		s.loseAll("a reaper declared this holder dead")
		if err := s.insertWorker(ctx); err != nil {
			s.log.Warn("register again", "error", err)
			return
		}
	}
	if err := s.handBackStray(ctx); err != nil {
		s.log.Warn("runs given up not handed back yet", "error", err)
		return
	}
	s.trust = sent.Add(s.cfg.Lease - s.cfg.Margin)
}

// handBackStray hands back the runs the database says this store leases
// but it does not hold: given up at the local deadline, dropped after a
// write that failed, or leased by a dequeue or a release whose answer was
// lost with the connection. It is called with s.mu held, so that no
// acquire is half done, and waits for the Dequeues under way.
func (s *Store) handBackStray(ctx context.Context) error {
	// A Dequeue's queries run without the lock: wait for those under way,
	// and hold new ones back.
	s.handingBack = true
	for s.taking > 0 {
		s.flushed.Wait()
	}
	defer func() {
		s.handingBack = false
		s.flushed.Broadcast()
	}()
	held := make([]string, 0, len(s.leases))
	for id, l := range s.leases {
		if !l.lost {
			held = append(held, id)
		}
	}
	tag, err := s.hb.Exec(ctx, `UPDATE runs SET state = $3, owner = NULL, available_at = now()
		WHERE owner = $1 AND state = 'leased' AND NOT (id = ANY($2))`, s.me, held, s.handBack())
	if err == nil && tag.RowsAffected() > 0 {
		s.log.Info("runs given up handed back", "runs", tag.RowsAffected(), "to", s.handBack())
	}
	return err
}

// handBack is the queue state of a run this store stops executing before
// it finished: a worker puts it back in the queue for any worker; a
// foreground holder parks it for `12fa resume`.
func (s *Store) handBack() string {
	if s.cfg.Worker {
		return "queued"
	}
	return "parked"
}

// watchdog gives the leases up at the local deadline, whatever the run
// goroutines are doing.
func (s *Store) watchdog() {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		wait := time.Until(s.trust)
		if wait <= 0 {
			s.trusted()
			wait = s.cfg.Heartbeat / 2
		}
		s.mu.Unlock()
		t.Reset(wait)
	}
}

// reaper puts the runs of holders whose lease expired back in the queue,
// and the parked runs whose questions expired, every Heartbeat (with
// jitter). Reapers running at once are safe: each
// run's row is locked and its condition checked again.
func (s *Store) reaper() {
	defer s.wg.Done()
	for {
		d := s.cfg.Heartbeat/2 + rand.N(s.cfg.Heartbeat)
		select {
		case <-s.stop:
			return
		case <-time.After(d):
		}
		if _, err := s.Reap(context.Background()); err != nil {
			s.log.Warn("reap", "error", err)
		}
		if n, err := s.wakeExpired(context.Background()); err != nil {
			s.log.Warn("wake runs whose questions expired", "error", err)
		} else if n > 0 {
			s.log.Info("runs whose questions expired put back in the queue", "runs", n)
		}
	}
}

// Reap deletes the holders whose last heartbeat is older than their lease
// and puts their runs back in the queue, and returns those runs. Right
// after the database restarted it waits one lease, so that live holders
// can heartbeat again before anyone is declared dead.
func (s *Store) Reap(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Lease)
	defer cancel()
	rows, err := s.hb.Query(ctx, `WITH dead AS (
			DELETE FROM workers w WHERE w.heartbeat_at < now() - w.lease_ms * interval '1 millisecond'
			AND now() - pg_postmaster_start_time() > w.lease_ms * interval '1 millisecond' RETURNING w.id)
		UPDATE runs r SET state = 'queued', owner = NULL, available_at = now(), takeovers = r.takeovers + 1
		WHERE r.state = 'leased' AND (r.owner IN (SELECT id FROM dead) OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = r.owner))
		RETURNING r.id`)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		s.mu.Lock()
		s.leaseStats.Reaped += uint64(len(ids))
		s.mu.Unlock()
		s.log.Info("runs of dead holders put back in the queue", "runs", len(ids))
	}
	return ids, nil
}

// Dequeue takes up to n queued runs (those whose time has come, by
// priority, oldest first) without waiting on runs another worker is
// taking, leases them to this store and folds them. The caller executes
// each (Claim, …, Release).
func (s *Store) Dequeue(ctx context.Context, n int) ([]Queued, error) {
	s.mu.Lock()
	if err := s.register(ctx); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if !s.trusted() {
		s.mu.Unlock()
		return nil, nil
	}
	// The queries run without the lock, so that appends go on meanwhile;
	// a heartbeat's hand-back (of runs leased but not held) waits for
	// them, and they for it.
	for s.handingBack {
		s.flushed.Wait()
	}
	s.taking++
	s.mu.Unlock()
	type got struct {
		q     Queued
		epoch int64
		last  uint64
	}
	var gs []got
	var ids []string
	var runs map[string]*state.Run
	var errs map[string]error
	err := func() error {
		rows, err := s.pool.Query(ctx, `WITH c AS (
				SELECT id FROM runs WHERE state = 'queued' AND available_at <= now()
				ORDER BY priority, available_at LIMIT $1 FOR UPDATE SKIP LOCKED)
			UPDATE runs r SET state = 'leased', owner = $2, epoch = r.epoch + 1, claims = r.claims + 1
			FROM c WHERE r.id = c.id RETURNING r.id, r.epoch, r.last_seq, r.bundle, r.takeovers`, n, s.me)
		if err != nil {
			return err
		}
		for rows.Next() {
			var g got
			if err := rows.Scan(&g.q.ID, &g.epoch, &g.last, &g.q.Bundle, &g.q.Takeovers); err != nil {
				rows.Close()
				return err
			}
			gs = append(gs, g)
			ids = append(ids, g.q.ID)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		runs, errs, err = s.loadAll(ctx, ids)
		return err
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taking--
	s.flushed.Broadcast()
	if err != nil {
		// The runs leased, if any, are handed back by the next heartbeat.
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	out := make([]Queued, 0, len(gs))
	var bad []error
	for _, g := range gs {
		if err := errs[g.q.ID]; err != nil {
			bad = append(bad, fmt.Errorf("run %s: %w", g.q.ID, err))
			if errors.Is(err, state.ErrCorrupt) {
				// Unreadable: parked for a person, not taken by every
				// worker in turn.
				_, _ = s.pool.Exec(ctx, "UPDATE runs SET state = 'parked', owner = NULL WHERE id = $1 AND owner = $2", g.q.ID, s.me)
			}
			// Otherwise the next heartbeat hands it back.
			continue
		}
		s.leases[g.q.ID] = newLease(g.epoch, g.last)
		s.runs[g.q.ID] = runs[g.q.ID]
		s.leaseStats.Claimed++
		out = append(out, g.q)
	}
	return out, errors.Join(bad...)
}

// Lost returns a channel closed when this store loses its lease on run id
// (or at once when it holds none): a step of the run still running must
// stop, as nothing it does can be recorded. Releasing the lease does not
// close it.
func (s *Store) Lost(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[id]; ok {
		return l.gone
	}
	c := make(chan struct{})
	close(c)
	return c
}

// Transient reports whether err is the database out of reach (a lost
// connection, a server shutting down or starting) rather than its answer:
// what failed may work when tried again.
func Transient(err error) bool { return err != nil && retryable(err) }

// Park hands run id back as parked, whatever its status: it waits for a
// person (`12fa resume`) instead of a worker. The caller must not be
// executing it.
func (s *Store) Park(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(context.Background(), id, "parked")
}

// Wake returns a channel that receives when a run becomes queued
// (LISTEN/NOTIFY); a worker also polls, since notifications sent while
// the listening connection was down are lost.
func (s *Store) Wake() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
		s.wg.Add(1)
		go s.listen()
	}
	return s.wake
}

func (s *Store) listen() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.stop
		cancel()
	}()
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("listen for queued runs", "error", err)
		// Whatever was sent meanwhile is lost: look once.
		s.poke()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	c, err := s.hb.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := c.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN twelvefa_runs"); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.poke()
	}
}

func (s *Store) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// LeaseStats returns what happened to this store's leases since Open.
func (s *Store) LeaseStats() LeaseStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaseStats
}
