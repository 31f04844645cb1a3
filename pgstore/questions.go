package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/internal/jsonenc"
)

// Questions keeps the questions of this database's runs, for
// inputs.NewWith: asked by a worker on one machine, answered from any. An
// answer that leaves a parked, waiting run with no pending question puts
// the run back in the queue in the same transaction, and the queue's
// notification wakes a worker.
func (s *Store) Questions() inputs.Backend { return questions{s} }

type questions struct{ s *Store }

func (q questions) Update(ids []string, run string, fn func([]inputs.Question) ([]inputs.Question, bool, error)) error {
	ctx := context.Background()
	tx, err := q.s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("questions: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	rows, err := tx.Query(ctx, "SELECT body::text FROM questions WHERE id = ANY($1) OR run_id = $2 ORDER BY asked_at, id FOR UPDATE", ids, run)
	if err != nil {
		return fmt.Errorf("questions: %w", err)
	}
	qs, err := scanQuestions(rows)
	if err != nil {
		return err
	}
	before := map[string]string{}
	for _, x := range qs {
		before[x.ID] = x.Status
	}
	out, changed, ferr := fn(qs)
	if !changed {
		return ferr
	}
	var answered []string
	for _, x := range out {
		body, err := jsonenc.Marshal(x)
		if err != nil {
			return err
		}
		var expires any
		if !x.ExpiresAt.IsZero() {
			expires = x.ExpiresAt
		}
		if _, err := tx.Exec(ctx, `INSERT INTO questions (id, run_id, step, status, body, asked_at, expires_at) VALUES ($1, $2, $3, $4, $5::json, $6, $7)
			ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body, asked_at = EXCLUDED.asked_at, expires_at = EXCLUDED.expires_at`,
			x.ID, x.Run, x.Step, x.Status, string(body), x.AskedAt, expires); err != nil {
			return fmt.Errorf("question %s: %w", x.ID, err)
		}
		if before[x.ID] == inputs.Pending && x.Status != inputs.Pending {
			answered = append(answered, x.Run)
		}
	}
	if len(answered) > 0 {
		// The run waits for nothing more: any worker may go on with it.
		if _, err := tx.Exec(ctx, `UPDATE runs SET state = 'queued', available_at = now() WHERE id = ANY($1) AND state = 'parked' AND status = 'waiting'
			AND NOT EXISTS (SELECT 1 FROM questions x WHERE x.run_id = runs.id AND x.status = 'pending')`, answered); err != nil {
			return fmt.Errorf("questions: queue the answered runs: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("questions: %w", err)
	}
	return ferr
}

func (q questions) List() ([]inputs.Question, error) {
	rows, err := q.s.pool.Query(context.Background(), "SELECT body::text FROM questions ORDER BY asked_at, id")
	if err != nil {
		return nil, fmt.Errorf("questions: %w", err)
	}
	return scanQuestions(rows)
}

func scanQuestions(rows pgx.Rows) ([]inputs.Question, error) {
	defer rows.Close()
	var qs []inputs.Question
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("questions: %w", err)
		}
		var x inputs.Question
		if err := json.Unmarshal([]byte(body), &x); err != nil {
			return nil, fmt.Errorf("questions: a stored question does not decode: %w", err)
		}
		qs = append(qs, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("questions: %w", err)
	}
	return qs, nil
}

// wakeExpired puts back in the queue the parked runs that wait for a
// question whose time ran out since they parked: a worker asks it again,
// and takes its default (or fails the step, when it has none).
func (s *Store) wakeExpired(ctx context.Context) (int64, error) {
	tag, err := s.hb.Exec(ctx, `UPDATE runs SET state = 'queued', available_at = now() WHERE state = 'parked' AND status = 'waiting'
		AND EXISTS (SELECT 1 FROM questions q WHERE q.run_id = runs.id AND q.status = 'pending' AND q.expires_at < now() AND runs.available_at < q.expires_at)`)
	return tag.RowsAffected(), err
}
