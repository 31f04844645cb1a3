package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PutCheckpoint keeps a checkpoint record (its JSON) of run ("" for a
// manual one), replacing the one of the same id. The record is derived
// from the journal and the git commit it names: it is committed without
// waiting for the disk.
func (s *Store) PutCheckpoint(ctx context.Context, id, run string, body []byte) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue(`INSERT INTO checkpoints (id, run_id, body) VALUES ($1, $2, $3::json)
		ON CONFLICT (id) DO UPDATE SET run_id = EXCLUDED.run_id, body = EXCLUDED.body, at = now()`, id, run, string(body))
	b.Queue("COMMIT")
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("checkpoint record %s: %w", id, err)
	}
	return nil
}

// CheckpointRecords returns the checkpoint records of run, or every one
// (manual ones included) when run is empty.
func (s *Store) CheckpointRecords(ctx context.Context, run string) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, "SELECT body::text FROM checkpoints WHERE $1 = '' OR run_id = $1 ORDER BY id", run)
	if err != nil {
		return nil, fmt.Errorf("checkpoint records: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("checkpoint records: %w", err)
		}
		out = append(out, []byte(body))
	}
	return out, rows.Err()
}
