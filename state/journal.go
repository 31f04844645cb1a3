package state

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/layout"
)

// replay reads the journal, rebuilds the runs it holds and, for a writer,
// cuts off a torn tail, removes what an interrupted compaction left, and
// opens the journal for appending. based reports whether the journal
// starts with a journal_base record (it was written by a compaction).
func (s *FileStore) replay() (based bool, err error) {
	name := s.path(JournalFile)
	flag := os.O_RDONLY
	if !s.cfg.ReadOnly {
		flag = os.O_RDWR | os.O_CREATE
		// The next journal of a compaction that did not reach its rename:
		// the journal it was to replace is whole.
		if err := os.Remove(s.path(layout.JournalCompacting)); err == nil {
			s.log.Warn("removed the journal of an interrupted compaction", "file", s.path(layout.JournalCompacting))
		}
	}
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		if s.cfg.ReadOnly && errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("open journal: %w", err)
	}
	good, based, err := s.readJournal(f, name)
	if err != nil {
		_ = f.Close()
		return false, err
	}
	s.size, s.baseSize = good, 0
	if s.cfg.ReadOnly {
		return based, f.Close()
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		_ = f.Close()
		return false, fmt.Errorf("seek journal: %w", err)
	}
	if end > good {
		s.log.Warn("dropping torn journal tail", "file", name, "offset", good, "bytes", end-good)
		if err := f.Truncate(good); err != nil {
			_ = f.Close()
			return false, fmt.Errorf("truncate torn journal tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return false, fmt.Errorf("fsync journal: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return false, fmt.Errorf("seek journal: %w", err)
	}
	s.journal = s.wrap(f)
	return based, nil
}

func (s *FileStore) wrap(f *os.File) JournalWriter {
	if s.cfg.WrapJournal != nil {
		return s.cfg.WrapJournal(f)
	}
	return f
}

// readJournal applies every good record and returns the offset just past
// the last one. A bad record followed by a good one is corruption.
//
// Sequence numbers rise by one from record to record. A compacted journal
// starts with a journal_base record, whose Seq is that of the last record
// before the compaction, and the run_state records after it carry the same
// Seq.
func (s *FileStore) readJournal(r io.Reader, name string) (good int64, based bool, err error) {
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
					return 0, false, fmt.Errorf("%s:%d: %w: a record of %d bytes, more than the %d this version reads (the file was left untouched)",
						name, line+1, ErrCorrupt, n, maxReadRecordBytes)
				}
			}
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return 0, false, fmt.Errorf("read journal %s: %w", name, readErr)
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
			} else if rec.Type == EventJournalBase {
				if line != 1 {
					why = fmt.Errorf("journal_base record on line %d", line)
				}
			} else if rec.Seq != s.seq+1 && !((rec.Type == EventRunState || rec.Type == EventStepState) && rec.Seq == s.seq && based) {
				why = fmt.Errorf("sequence %d after %d", rec.Seq, s.seq)
			}
		}
		if badLine != 0 && (why == nil || rec.Seq != 0) {
			// A record after a bad one: the bad one is not a torn tail.
			return 0, false, fmt.Errorf("%s:%d: %w: %v (records follow it; the file was left untouched)",
				name, badLine, ErrCorrupt, badWhy)
		}
		if why == nil {
			if err := apply(s.runs, &rec); err != nil {
				return 0, false, fmt.Errorf("%s:%d: %w: %v", name, line, ErrCorrupt, err)
			}
			based = based || rec.Type == EventJournalBase
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
	return good, based, nil
}

// Append writes recs to the journal and makes them durable before it
// returns. It fills in Seq and, when zero, Time.
//
// Concurrent callers share fsyncs (group commit): while one caller's batch
// is being written and synced, the records of the others gather, and the
// next write and fsync cover all of them. Each caller still returns only
// once its own records are on disk.
func (s *FileStore) Append(ctx context.Context, recs ...*Record) error {
	return s.append(ctx, true, recs)
}

// AppendLazy adds recs to the journal without waiting for the disk. They
// are written with the next batch (at once when no write is under way) and
// made durable by the next Append, so a crash may lose them. Use it only for
// records whose loss a resume tolerates: the start of an idempotent step's
// attempt (lost, the step simply runs again).
func (s *FileStore) AppendLazy(ctx context.Context, recs ...*Record) error {
	return s.append(ctx, false, recs)
}

func (s *FileStore) append(ctx context.Context, sync bool, recs []*Record) error {
	if s.cfg.ReadOnly {
		return errors.New("append to a store opened read-only")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, rec := range recs {
		if internalEvents[rec.Type] {
			return fmt.Errorf("append: %s records are the store's own", rec.Type)
		}
	}
	if s.cfg.NoGroupCommit {
		s.serial.Lock()
		defer s.serial.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Under the lock, so that no compaction lets a run go between the
	// look and the append.
	all, err := s.revive(recs)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	err = s.enqueue(sync, all)
	if err == nil && sync {
		// A run that just finished goes to its file.
		for _, rec := range recs {
			if r := s.runs[rec.Run]; r != nil && r.Status.Finished() {
				s.queueFiling(rec.Run)
			}
		}
	}
	return err
}

// revive returns recs, preceded by the state records of each run they name
// that the journal no longer holds but a run file does: a finished run
// taken up again. It is called with s.mu held; the file is read under it,
// which only a run taken up again costs.
func (s *FileStore) revive(recs []*Record) ([]*Record, error) {
	var cold []string
	for _, rec := range recs {
		if _, hot := s.runs[rec.Run]; !hot && rec.Run != "" && !slices.Contains(cold, rec.Run) {
			cold = append(cold, rec.Run)
		}
	}
	if len(cold) == 0 {
		return recs, nil
	}
	var revived []*Record
	for _, id := range cold {
		if slices.ContainsFunc(recs, func(r *Record) bool { return r.Run == id && r.Type == EventRunStarted }) {
			// A new run, unless a finished one has that id already.
			if _, err := os.Stat(s.runPath(id)); ValidRunID(id) == nil && err == nil {
				return nil, fmt.Errorf("run %q started twice", id)
			}
			continue
		}
		r, err := s.readRunFile(id)
		if errors.Is(err, ErrUnknownRun) {
			continue // validate says so
		}
		if err != nil {
			return nil, err
		}
		revived = append(revived, stateRecords(&r, 0, time.Time{})...)
	}
	if len(revived) == 0 {
		return recs, nil
	}
	return append(revived, recs...), nil
}

// enqueue adds recs to the pending batch and folds them into the runs,
// then, for a sync append, waits until they are durable. It is called with
// s.mu held.
func (s *FileStore) enqueue(sync bool, recs []*Record) error {
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
		if n := s.pending.Len() - before; n > MaxRecordBytes && !internalEvents[rec.Type] {
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
//
// Once the journal has grown past compactAt, the next flush is a
// compaction (compactOnce), which writes the batch too.
func (s *FileStore) flush() {
	for {
		if s.size >= s.compactAt && s.failed == nil {
			s.compactOnce()
		} else {
			s.flushOnce()
		}
		if s.failed != nil || s.pendingSync || s.pending.Len() == 0 {
			return
		}
	}
}

func (s *FileStore) flushOnce() {
	batch, buf, needSync := s.takeBatch()
	journal := s.journal
	s.mu.Unlock()

	err := writeBatch(journal, buf, needSync)

	s.mu.Lock()
	s.settleBatch(buf, needSync, err)
	s.doneWith(batch)
}

// takeBatch starts a flush: it takes the pending batch (and whether it
// needs an fsync). It is called with s.mu held.
func (s *FileStore) takeBatch() (batch uint64, buf *bytes.Buffer, needSync bool) {
	s.flushing = true
	batch = s.nextBatch
	s.nextBatch++
	buf = s.pending
	s.pending, s.spare = s.spare, nil
	needSync = s.pendingSync
	s.pendingSync = false
	return batch, buf, needSync
}

// settleBatch counts a written batch and takes its buffer back; after a
// failed write or fsync, what reached the file is unknown (and after a
// failed fsync the page cache may lie), so every later record is refused
// until the store is reopened and its tail checked. It is called with s.mu
// held.
func (s *FileStore) settleBatch(buf *bytes.Buffer, needSync bool, err error) {
	s.size += int64(buf.Len())
	s.stats.Writes++
	if needSync {
		s.stats.Syncs++
	}
	buf.Reset()
	s.spare = buf
	if err != nil {
		s.failed = err
		_ = s.journal.Close()
		s.journal = nil
	}
}

// doneWith ends the flush of batch and wakes its waiters.
func (s *FileStore) doneWith(batch uint64) {
	s.doneBatch = batch
	s.flushing = false
	s.flushed.Broadcast()
}

func writeBatch(journal JournalWriter, buf *bytes.Buffer, sync bool) error {
	if buf.Len() == 0 && !sync {
		return nil
	}
	if _, err := journal.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if sync {
		if err := journal.Sync(); err != nil {
			return fmt.Errorf("fsync journal: %w", err)
		}
	}
	return nil
}
