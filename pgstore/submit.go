package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/state"
)

// Blob is content that runs need on any machine (a manifest, a plugin, a
// bundle listing them), stored under its sha256.
type Blob struct {
	Kind string
	Body []byte
}

// SHA256 returns the blob's name.
func (b Blob) SHA256() string {
	sum := sha256.Sum256(b.Body)
	return hex.EncodeToString(sum[:])
}

// Submit enqueues new runs, one per run_started record in starts, for
// workers to take: in one transaction it stores the blobs the runs need
// (those already stored are kept) and each run, queued, with its first
// record. bundle names the blob a worker reads to run them. Nothing is
// written when a record is refused.
func (s *Store) Submit(ctx context.Context, starts []*state.Record, bundle string, blobs []Blob) error {
	runs := map[string]*state.Run{}
	now := s.cfg.Now().UTC()
	var ids, workflows, manifests, statuses, bodies []string
	var steps []int32
	var times []any
	for _, rec := range starts {
		if rec.Type != state.EventRunStarted {
			return fmt.Errorf("submit: a %s record does not start a run", rec.Type)
		}
		if err := state.ValidRunID(rec.Run); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		if rec.Time.IsZero() {
			rec.Time = now
		}
		rec.Seq = 1
		if err := state.Validate(runs, []*state.Record{rec}); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		_ = state.Apply(runs, rec)
		b, err := jsonenc.Marshal(rec)
		if err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		in := runs[rec.Run].Info()
		ids, workflows, manifests, statuses, bodies = append(ids, rec.Run), append(workflows, in.Workflow), append(manifests, in.Manifest),
			append(statuses, string(in.Status)), append(bodies, string(b))
		steps, times = append(steps, int32(in.Steps)), append(times, rec.Time)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	for _, b := range blobs {
		if _, err := tx.Exec(ctx, "INSERT INTO blobs (sha256, kind, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", b.SHA256(), b.Kind, b.Body); err != nil {
			return fmt.Errorf("submit: store a %s blob: %w", b.Kind, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO runs (id, workflow, manifest, state, status, steps, epoch, last_seq, bundle, created_at, updated_at)
		SELECT r.id, r.workflow, r.manifest, 'queued', r.status, r.steps, 0, 1, $7, r.at, r.at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[]) AS r(id, workflow, manifest, status, steps, at)`,
		ids, workflows, manifests, statuses, steps, times, bundle); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO records (run_id, seq, epoch, type, body)
		SELECT r.id, 1, 0, $2, r.body::json FROM unnest($1::text[], $3::text[]) AS r(id, body)`,
		ids, string(state.EventRunStarted), bodies); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("submit: commit: %w", err)
	}
	s.mu.Lock()
	s.stats.Records += uint64(len(starts))
	s.stats.Writes++
	s.stats.Syncs++
	s.mu.Unlock()
	return nil
}
