package pgstore

import (
	"context"
	"fmt"
)

// Audit is what the database says about its runs' history, as `12fa
// store check` prints it: the figures a takeover must leave right.
type Audit struct {
	// Runs counts runs by status; Queue by queue state (queued, leased,
	// parked, done).
	Runs  map[string]int `json:"runs"`
	Queue map[string]int `json:"queue"`
	// Takeovers counts runs put back in the queue by a reaper (a run taken
	// over twice counts twice); Claims how many times runs were leased.
	Takeovers int `json:"takeovers"`
	Claims    int `json:"claims"`
	// Workers counts the workers registered now.
	Workers int `json:"workers"`
	// CompletedRerun counts steps started again after they completed: 0
	// in a correct history. Interrupted counts attempts that were
	// started and then started again with nothing recorded between (an
	// interrupted idempotent step run again after a takeover, or one a
	// person chose to rerun).
	CompletedRerun int `json:"completed_rerun"`
	Interrupted    int `json:"interrupted_rerun"`
	// Gaps counts runs whose records are not numbered 1…last_seq;
	// EpochDisorder records written under an older epoch than a record
	// before them: both 0 in a correct history.
	Gaps          int `json:"gaps"`
	EpochDisorder int `json:"epoch_disorder"`
}

// Check reads the Audit of the whole database.
func (s *Store) Check(ctx context.Context) (*Audit, error) {
	a := &Audit{Runs: map[string]int{}, Queue: map[string]int{}}
	rows, err := s.pool.Query(ctx, "SELECT status, state, count(*), sum(takeovers), sum(claims) FROM runs GROUP BY status, state")
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for rows.Next() {
		var status, st string
		var n, t, c int
		if err := rows.Scan(&status, &st, &n, &t, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("check: %w", err)
		}
		a.Runs[status] += n
		a.Queue[st] += n
		a.Takeovers += t
		a.Claims += c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM workers),
		(SELECT count(*) FROM records s JOIN records c ON c.run_id = s.run_id AND c.step = s.step
			WHERE s.type = 'step_started' AND c.type = 'step_completed' AND s.seq > c.seq
			AND NOT EXISTS (SELECT 1 FROM records b WHERE b.run_id = s.run_id AND b.seq > c.seq AND b.seq < s.seq
				AND b.type IN ('run_restored', 'run_rolling_back', 'rollback_started'))),
		(SELECT count(*) FROM (SELECT type, lead(type) OVER (PARTITION BY run_id, step ORDER BY seq) AS next
			FROM records WHERE step IS NOT NULL) d WHERE type = 'step_started' AND next = 'step_started'),
		(SELECT count(*) FROM runs r WHERE r.last_seq <> (SELECT count(*) FROM records x WHERE x.run_id = r.id)
			OR r.last_seq <> coalesce((SELECT max(seq) FROM records x WHERE x.run_id = r.id), 0)),
		(SELECT count(*) FROM (SELECT epoch < lag(epoch) OVER (PARTITION BY run_id ORDER BY seq) AS bad FROM records) e WHERE bad)`).
		Scan(&a.Workers, &a.CompletedRerun, &a.Interrupted, &a.Gaps, &a.EpochDisorder)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return a, nil
}
