package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/jsonenc"
)

// runFile is the document in runs/<id>.json: a finished run's state.
type runFile struct {
	Version int `json:"version"`
	// Seq is the journal sequence of the last record folded into Run.
	Seq uint64 `json:"seq"`
	Run *Run   `json:"run"`
}

// RunInfo sums up a run: what a list of runs shows, and a line of the
// index of finished runs.
type RunInfo struct {
	ID        string    `json:"id"`
	Workflow  string    `json:"workflow"`
	Manifest  string    `json:"manifest,omitempty"`
	Status    RunStatus `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Steps counts the run's steps, Done those completed.
	Steps int       `json:"steps"`
	Done  int       `json:"done"`
	Cause abi.Cause `json:"cause,omitempty"`
	Error string    `json:"error,omitempty"`
	// Seq is the journal sequence the run's file reflects (index lines).
	Seq uint64 `json:"seq,omitempty"`
	// Blobs names the blobs the run's recorded calls refer to.
	Blobs []string `json:"blobs,omitempty"`
}

// Info sums up r.
func (r *Run) Info() RunInfo {
	info := r.Summary()
	for i := range r.Steps {
		for _, c := range r.Steps[i].Calls {
			if c.Blob != "" && !slices.Contains(info.Blobs, c.Blob) {
				info.Blobs = append(info.Blobs, c.Blob)
			}
		}
	}
	return info
}

// Summary is Info without Blobs, in constant time for a run folded from
// its start (a store's, once per append).
func (r *Run) Summary() RunInfo {
	info := RunInfo{ID: r.ID, Workflow: r.Workflow, Manifest: r.Manifest, Status: r.Status,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Steps: len(r.Steps), Cause: r.Cause, Error: r.Error, Seq: r.seq, Done: r.done}
	if !r.counted {
		info.Done = 0
		for i := range r.Steps {
			if r.Steps[i].Status == StepCompleted {
				info.Done++
			}
		}
	}
	return info
}

func (s *FileStore) runPath(id string) string {
	return filepath.Join(s.cfg.Dir, RunsDir, id+".json")
}

// readRunFile reads a finished run from its file.
func (s *FileStore) readRunFile(id string) (Run, error) {
	if ValidRunID(id) != nil {
		return Run{}, fmt.Errorf("%w %q", ErrUnknownRun, id)
	}
	path := s.runPath(id)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Run{}, fmt.Errorf("%w %q", ErrUnknownRun, id)
	}
	if err != nil {
		return Run{}, fmt.Errorf("read run %s: %w", id, err)
	}
	var doc runFile
	if err := json.Unmarshal(b, &doc); err != nil || doc.Run == nil || doc.Run.ID != id {
		if err == nil {
			err = errors.New("it holds no run of that id")
		}
		return Run{}, fmt.Errorf("%s: %w: %v (the file was left untouched)", path, ErrCorrupt, err)
	}
	r := *doc.Run
	r.reindex()
	r.seq = doc.Seq
	return r, nil
}

// Filing: a run that finished is written to its run file and the index by
// the filer, a goroutine of the writer's, off the path of any step; once
// both are durable the run is marked filed (s.filed), and the next
// compaction leaves it out of the journal, unless records came for it
// since.

// queueFiling hands finished runs to the filer. It is called with s.mu
// held.
func (s *FileStore) queueFiling(ids ...string) {
	for _, id := range ids {
		if !slices.Contains(s.fileQ, id) {
			s.fileQ = append(s.fileQ, id)
		}
	}
	if len(ids) > 0 {
		s.filing.Broadcast()
	}
}

// filer files the runs queued until the store closes.
func (s *FileStore) filer() {
	defer close(s.filerDone)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(s.fileQ) == 0 && !s.closing {
			s.filing.Wait()
		}
		if len(s.fileQ) == 0 {
			return
		}
		ids := s.fileQ
		s.fileQ = nil
		var runs []Run
		for _, id := range ids {
			if r, ok := s.runs[id]; ok && r.Status.Finished() {
				c := r.Clone()
				c.seq = r.seq
				runs = append(runs, c)
			}
		}
		s.filerBusy = true
		s.mu.Unlock()
		done := s.writeRunFiles(runs)
		s.mu.Lock()
		s.filerBusy = false
		for _, r := range done {
			s.filed[r.ID] = r.seq
			s.stats.Filed++
			s.recent = append(s.recent, r)
		}
		if n := len(s.recent) - recentRuns; n > 0 {
			s.recent = slices.Delete(s.recent, 0, n)
		}
		s.filing.Broadcast()
	}
}

// drainFiling waits until the filer has filed what was queued. It is
// called with s.mu held.
func (s *FileStore) drainFiling() {
	for s.filerDone != nil && (len(s.fileQ) > 0 || s.filerBusy) {
		s.filing.Wait()
	}
}

// writeRunFiles writes each run's file and then their index lines, all
// durably, and returns the runs it filed. Failures are logged: the journal
// keeps a run it could not file.
func (s *FileStore) writeRunFiles(runs []Run) []Run {
	var done []Run
	var lines []byte
	for i := range runs {
		r := &runs[i]
		b, err := jsonenc.Marshal(runFile{Version: 1, Seq: r.seq, Run: r})
		if err == nil {
			err = atomicfile.Write(s.runPath(r.ID), append(b, '\n'), 0o644)
		}
		var line []byte
		if err == nil {
			line, err = jsonenc.Marshal(r.Info())
		}
		if err != nil {
			s.log.Warn("finished run kept in the journal", "run", r.ID, "error", err)
			continue
		}
		lines = append(append(lines, line...), '\n')
		done = append(done, *r)
	}
	if len(done) == 0 {
		return nil
	}
	if err := s.appendIndex(lines); err != nil {
		s.log.Warn("finished runs kept in the journal", "runs", len(done), "error", err)
		return nil
	}
	return done
}

// appendIndex appends lines to the index and fsyncs it.
func (s *FileStore) appendIndex(lines []byte) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	f, err := os.OpenFile(s.indexPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if _, err := f.Write(lines); err != nil {
		_ = f.Close()
		return fmt.Errorf("index: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("index: fsync: %w", err)
	}
	return f.Close()
}

func (s *FileStore) indexPath() string { return filepath.Join(s.cfg.Dir, RunsDir, IndexFile) }

// indexBackward calls fn with the index's lines from the last to the
// first, until fn returns false; prefilter, when set, skips lines before
// they are decoded. A line that does not parse (the torn end of an append
// a crash cut short) is skipped: the run's file, written before it, still
// holds the run, and a later filing of the run appends its line again.
func (s *FileStore) indexBackward(fn func(line []byte, info *RunInfo) bool, prefilter func([]byte) bool) error {
	f, err := os.Open(s.indexPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	const chunk = 256 << 10
	var carry []byte // the start of a line whose beginning is further back
	buf := make([]byte, chunk)
	for end > 0 {
		n := int64(chunk)
		if end < n {
			n = end
		}
		end -= n
		if _, err := f.ReadAt(buf[:n], end); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		data := append(buf[:n:n], carry...)
		carry = nil
		for len(data) > 0 {
			i := bytes.LastIndexByte(data[:len(data)-1], '\n')
			if i < 0 && end > 0 {
				carry = append([]byte(nil), data...)
				break
			}
			line := data[i+1:]
			data = data[:i+1]
			if i < 0 {
				data = nil
			}
			line = bytes.TrimSpace(line)
			if len(line) == 0 || (prefilter != nil && !prefilter(line)) {
				continue
			}
			var info RunInfo
			if json.Unmarshal(line, &info) != nil || info.ID == "" {
				continue
			}
			if !fn(line, &info) {
				return nil
			}
		}
	}
	return nil
}
