package state

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"slices"

	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/layout"
)

// Compaction replaces the journal by one that says the same of every run
// it holds in fewer records: a journal_base record, then one run_state
// record per run, then whatever is appended next. The runs that finished
// were filed (runs/<id>.json, durable) before the journal let them go, so
// the journal that is replaced holds nothing that is not in the new one or
// in a run file.
//
// The new journal is written beside the old one (JournalCompacting),
// fsync'd, and renamed over it; the rename is the commit point. A crash
// before it leaves the old journal whole (and Open removes the other); a
// crash after it leaves the new one.

// compactOnce is a flush that also compacts: it takes the pending batch
// and, at the same instant, a copy of every run the journal holds, so that
// the copy is exactly the fold of the records written so far once the
// batch is. It writes the batch to the current journal (as flushOnce
// would), then the new journal, and swaps them. It is called with s.mu
// held and releases it during the I/O. A failure to write the new journal
// is logged and leaves the current one in use.
func (s *FileStore) compactOnce() {
	batch, buf, needSync := s.takeBatch()
	base := s.seq
	runs := make([]Run, 0, len(s.runs))
	for id, r := range s.runs {
		if seq, ok := s.filed[id]; ok && seq == r.seq {
			// Its run file is durable and current: the journal lets it
			// go (Run reads the file from now on).
			delete(s.runs, id)
			delete(s.filed, id)
			continue
		}
		delete(s.filed, id)
		c := r.Clone()
		c.seq = r.seq
		runs = append(runs, c)
	}
	journal := s.journal
	s.mu.Unlock()

	err := writeBatch(journal, buf, needSync)
	var next *os.File
	var size int64
	var cerr error
	if err == nil {
		next, size, cerr = s.writeCompacted(base, runs)
	}

	s.mu.Lock()
	s.settleBatch(buf, needSync, err)
	switch {
	case err != nil:
		// The store failed (settleBatch); the next journal was not written.
	case cerr != nil:
		s.log.Warn("journal not compacted; going on with it", "error", cerr)
		s.compactAt = 2 * max(s.size, s.cfg.CompactBytes)
	default:
		_ = s.journal.Close()
		s.journal = s.wrap(next)
		s.size, s.baseSize = size, size
		s.compactAt = max(s.cfg.CompactBytes, 2*size)
		s.stats.Compactions++
	}
	s.doneWith(batch)
}

// compactNow compacts the journal when no flush is under way.
func (s *FileStore) compactNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.flushing {
		s.flushed.Wait()
	}
	if s.journal == nil || s.failed != nil {
		return
	}
	s.compactOnce()
}

// writeCompacted writes the journal that replaces the current one and
// returns it open for appending, with its size.
func (s *FileStore) writeCompacted(base uint64, runs []Run) (f *os.File, size int64, err error) {
	slices.SortFunc(runs, func(a, b Run) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	tmp := s.path(layout.JournalCompacting)
	f, err = os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("compact journal: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	now := s.cfg.Now().UTC()
	w := bufio.NewWriterSize(f, 1<<20)
	var line bytes.Buffer
	put := func(rec *Record) error {
		line.Reset()
		if err := jsonenc.Append(&line, rec); err != nil {
			return fmt.Errorf("compact journal: encode %s record of run %q: %w", rec.Type, rec.Run, err)
		}
		size += int64(line.Len())
		_, err := w.Write(line.Bytes())
		return err
	}
	if err := put(&Record{Seq: base, Time: now, Type: EventJournalBase}); err != nil {
		return nil, 0, err
	}
	for i := range runs {
		for _, rec := range stateRecords(&runs[i], base, now) {
			if err := put(rec); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return nil, 0, fmt.Errorf("compact journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, 0, fmt.Errorf("compact journal: fsync: %w", err)
	}
	if err := os.Rename(tmp, s.path(JournalFile)); err != nil {
		return nil, 0, fmt.Errorf("compact journal: %w", err)
	}
	if err := atomicfile.SyncDir(s.cfg.Dir); err != nil {
		// The rename happened: the new journal is the journal, whether or
		// not the directory reached the disk.
		s.log.Warn("compact journal: fsync of the store directory", "error", err)
	}
	return f, size, nil
}
