package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/12fa/12fa/progress"
)

// ProgressSink keeps the progress log's entries in the database too
// (progress.OpenWith), written a batch at a time off the steps' path.
func (s *Store) ProgressSink() progress.Sink { return progressSink{s} }

type progressSink struct{ s *Store }

func (p progressSink) WriteEntries(lines []progress.Line) error {
	runs := make([]string, len(lines))
	bodies := make([]string, len(lines))
	for i, l := range lines {
		runs[i], bodies[i] = l.Session, string(l.JSON)
	}
	// Not waiting for the disk (the progress file has the entries): the
	// steps' commits do not share their fsyncs with the log's.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue("INSERT INTO progress (run_id, body) SELECT * FROM unnest($1::text[], $2::json[])", runs, bodies)
	b.Queue("COMMIT")
	err := p.s.pool.SendBatch(context.Background(), b).Close()
	if err != nil {
		p.s.log.Warn("progress entries not kept in the database", "entries", len(lines), "error", err)
	}
	return err
}

// Progress returns the progress entries of run (every run's when empty)
// after the position after, in order, and the position of the last.
func (s *Store) Progress(ctx context.Context, run string, after int64) ([]progress.Entry, int64, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, body::text FROM progress WHERE id > $1 AND ($2 = '' OR run_id = $2) ORDER BY id", after, run)
	if err != nil {
		return nil, after, fmt.Errorf("progress: %w", err)
	}
	defer rows.Close()
	var out []progress.Entry
	for rows.Next() {
		var body string
		if err := rows.Scan(&after, &body); err != nil {
			return nil, after, fmt.Errorf("progress: %w", err)
		}
		var e progress.Entry
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, after, fmt.Errorf("progress entry %d: %w", after, err)
		}
		out = append(out, e)
	}
	return out, after, rows.Err()
}
