package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/layout"
)

// PruneOptions say which finished runs Prune removes.
type PruneOptions struct {
	// OlderThan: runs last updated before it go. The zero time removes
	// none (Prune only finishes an interrupted prune).
	OlderThan time.Time
	// Keep: the Keep most recently finished runs (the first Keep of List)
	// stay, however old.
	Keep int
}

// pruneIntent is the document in prune.json: what a prune under way
// removes.
type pruneIntent struct {
	Runs []string `json:"runs"`
	// Started: blobs newer than this are kept (a step of this process may
	// have stored one it has not recorded yet).
	Started time.Time `json:"started"`
}

// PruneInterrupted reports whether a prune was interrupted (prune.json is
// there); Prune finishes it before anything else.
func (s *FileStore) PruneInterrupted() bool {
	_, err := os.Stat(s.path(layout.PruneFile))
	return err == nil
}

// Prune removes finished runs: their files and index lines, what also
// removes of them (checkpoints, refs: what other parts keep by run), and
// the blobs no remaining run refers to. Unfinished runs are never removed.
// It first writes what it will remove to prune.json (durably), so that a
// crash in its middle is finished by the next Prune: every step is one
// that can be done twice.
func (s *FileStore) Prune(opts PruneOptions, also func(runs []string) error) ([]RunInfo, error) {
	if s.cfg.ReadOnly {
		return nil, errors.New("prune of a store opened read-only")
	}
	if b, err := os.ReadFile(s.path(layout.PruneFile)); err == nil {
		var in pruneIntent
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("%s: %w: %v", s.path(layout.PruneFile), ErrCorrupt, err)
		}
		s.log.Info("finishing an interrupted prune", "runs", len(in.Runs))
		if err := s.finishPrune(in, also); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if opts.OlderThan.IsZero() {
		return nil, nil
	}
	// Finished runs leave the journal once filed: what it holds after this
	// is what is not finished.
	s.mu.Lock()
	s.drainFiling()
	s.mu.Unlock()
	s.compactNow()
	hot := map[string]bool{}
	for _, r := range s.hot() {
		hot[r.ID] = true
	}
	var finished []RunInfo
	seen := map[string]bool{}
	if err := s.indexBackward(func(_ []byte, info *RunInfo) bool {
		if !seen[info.ID] && !hot[info.ID] {
			finished = append(finished, *info)
		}
		seen[info.ID] = true
		return true
	}, nil); err != nil {
		return nil, err
	}
	// finished is in the order List gives: the most recently finished
	// first.
	var gone []RunInfo
	for i, info := range finished {
		if i >= opts.Keep && info.UpdatedAt.Before(opts.OlderThan) {
			gone = append(gone, info)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	in := pruneIntent{Started: s.cfg.Now().UTC()}
	for _, info := range gone {
		in.Runs = append(in.Runs, info.ID)
	}
	b, err := jsonenc.Marshal(in)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(s.path(layout.PruneFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if err := s.finishPrune(in, also); err != nil {
		return nil, err
	}
	return gone, nil
}

// finishPrune does what in says, each step idempotent, and removes
// prune.json last.
func (s *FileStore) finishPrune(in pruneIntent, also func([]string) error) error {
	gone := map[string]bool{}
	for _, id := range in.Runs {
		gone[id] = true
	}
	hot := map[string]bool{}
	referenced := map[string]bool{}
	for _, r := range s.hot() {
		hot[r.ID] = true
		for _, b := range r.Info().Blobs {
			referenced[b] = true
		}
	}
	// The index without the pruned runs (and with one line per run).
	var lines [][]byte
	seen := map[string]bool{}
	if err := s.indexBackward(func(line []byte, info *RunInfo) bool {
		if seen[info.ID] {
			return true
		}
		seen[info.ID] = true
		if gone[info.ID] && !hot[info.ID] {
			return true
		}
		for _, b := range info.Blobs {
			referenced[b] = true
		}
		lines = append(lines, append([]byte(nil), line...))
		return true
	}, nil); err != nil {
		return err
	}
	slices.Reverse(lines)
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	index := make([]byte, 0, size)
	for _, l := range lines {
		index = append(append(index, l...), '\n')
	}
	s.indexMu.Lock()
	err := atomicfile.Write(s.indexPath(), index, 0o644)
	s.indexMu.Unlock()
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	for _, id := range in.Runs {
		if hot[id] {
			continue // taken up again since: it is the journal's now
		}
		if err := os.Remove(s.runPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune: %w", err)
		}
	}
	var ids []string
	for _, id := range in.Runs {
		if !hot[id] {
			ids = append(ids, id)
		}
	}
	if also != nil {
		if err := also(ids); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	entries, err := os.ReadDir(s.path(BlobsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("prune: %w", err)
	}
	for _, e := range entries {
		if referenced[e.Name()] {
			continue
		}
		if fi, err := e.Info(); err != nil || !fi.ModTime().Before(in.Started) {
			continue
		}
		if err := os.Remove(filepath.Join(s.path(BlobsDir), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune: %w", err)
		}
	}
	if err := os.Remove(s.path(layout.PruneFile)); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	return atomicfile.SyncDir(s.cfg.Dir)
}
