// Package progress keeps .12fa/progress.jsonl, the log of every action 12fa
// takes (the 12-factor-agents package's progress log): one JSON object a
// line, appended, never rewritten. It is for people and tools watching
// runs; the journal, not this file, is what resume trusts, so lines are
// written without fsync and a torn or unreadable line is skipped on read.
//
// The log rotates: past its size limit the file is renamed to
// progress.jsonl.1 (replacing the one before) and a new one is started, so
// that it keeps between one and two limits' worth of the latest actions.
//
// progress imports nothing of 12fa's but internal helpers.
package progress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/layout"
)

// FileName is the log's name in the store directory; RotatedSuffix ends
// the name of its previous part.
const (
	FileName      = layout.ProgressFile
	RotatedSuffix = ".1"
)

// DefaultMaxBytes is the size past which the log rotates.
const DefaultMaxBytes = 64 << 20

// Entry is one action, with the seed's fields.
type Entry struct {
	Time time.Time `json:"time"`
	// Session is the run the action belongs to.
	Session string `json:"session"`
	// Phase is "run", "step", "rollback" or "log".
	Phase  string `json:"phase"`
	Step   string `json:"step,omitempty"`
	Action string `json:"action"`
	// Result is "ok", "failed", "waiting" or "" for actions that have none.
	Result     string  `json:"result,omitempty"`
	Details    string  `json:"details,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
}

// Log appends entries to a progress file. Its methods are safe for
// concurrent use. Entries are written in order by a goroutine of its own
// every 50ms, so that adding one costs its encoding and not a write (or a
// wake-up) on the caller's path; Close writes what is left. A crash may
// lose the last 50ms of entries; the journal, not this log, is durable.
type Log struct {
	path    string
	max     int64
	size    int64 // of the current file, as written by this Log
	f       *os.File
	mu      sync.Mutex
	pending []byte
	// sessions are the pending entries' sessions, in order, when there is
	// a sink.
	sessions []string
	wake     chan struct{}
	done     chan struct{}
	closed   bool
	err      error
	sink     Sink
}

// Sink receives, from a Log's goroutine, the entries it wrote to its
// file, a batch at a time, in order. A store that keeps runs for many
// machines (the PostgreSQL store) keeps them too, so that `12fa logs`
// reads them from anywhere.
type Sink interface {
	WriteEntries(lines []Line) error
}

// Line is an entry as the file has it: its JSON line without the newline,
// and its Session.
type Line struct {
	Session string
	JSON    []byte
}

// Open opens (creating) the progress file path for appending; it rotates
// past maxBytes (DefaultMaxBytes when 0). A torn last line left by a crash
// is ended first, so that it does not swallow the next entry.
func Open(path string, maxBytes int64) (*Log, error) { return OpenWith(path, maxBytes, nil) }

// OpenWith is Open with a Sink that gets every entry written too (none
// when nil). A batch the sink refuses is not offered again.
func OpenWith(path string, maxBytes int64, sink Sink) (*Log, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	f, size, err := openLog(path)
	if err != nil {
		return nil, err
	}
	l := &Log{path: path, max: maxBytes, size: size, f: f, wake: make(chan struct{}, 1), done: make(chan struct{}), sink: sink}
	go l.write()
	return l, nil
}

func openLog(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("open progress log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("open progress log: %w", err)
	}
	size := st.Size()
	if size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			if n, err := f.Write([]byte{'\n'}); err == nil {
				size += int64(n)
			}
		}
	}
	return f, size, nil
}

// rotate moves the full file aside and starts a new one. It is called by
// the writing goroutine only.
func (l *Log) rotate() error {
	if err := os.Rename(l.path, l.path+RotatedSuffix); err != nil {
		return fmt.Errorf("rotate progress log: %w", err)
	}
	f, size, err := openLog(l.path)
	if err != nil {
		return err
	}
	_ = l.f.Close()
	l.f, l.size = f, size
	return nil
}

// maxPending bounds the bytes waiting to be written; past it Add drops
// entries (and says so) rather than grow without bound.
const maxPending = 8 << 20

// Add appends e as one line.
func (l *Log) Add(e Entry) error {
	b, err := jsonenc.Marshal(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("progress log closed")
	}
	if l.err != nil || len(l.pending)+len(b) > maxPending {
		err := l.err
		l.mu.Unlock()
		if err == nil {
			err = errors.New("progress log behind: entry dropped")
		}
		return err
	}
	l.pending = append(append(l.pending, b...), '\n')
	if l.sink != nil {
		l.sessions = append(l.sessions, e.Session)
	}
	l.mu.Unlock()
	return nil
}

// flushEvery is how often pending entries are written.
const flushEvery = 50 * time.Millisecond

func (l *Log) write() {
	defer close(l.done)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	var buf []byte
	var sessions []string
	for {
		l.mu.Lock()
		buf, l.pending = l.pending, buf[:0]
		sessions, l.sessions = l.sessions, sessions[:0]
		closed := l.closed
		l.mu.Unlock()
		if len(buf) > 0 {
			if l.sink != nil {
				lines := make([]Line, 0, len(sessions))
				for rest := buf; len(rest) > 0; {
					i := bytes.IndexByte(rest, '\n')
					lines = append(lines, Line{Session: sessions[len(lines)], JSON: rest[:i]})
					rest = rest[i+1:]
				}
				_ = l.sink.WriteEntries(lines) // the file has them
			}
			n, err := l.f.Write(buf)
			l.size += int64(n)
			if err == nil && l.size >= l.max {
				err = l.rotate()
			} else if err != nil {
				err = fmt.Errorf("write progress log: %w", err)
			}
			if err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
			}
			continue
		}
		if closed {
			return
		}
		select {
		case <-l.wake:
		case <-tick.C:
		}
	}
}

// Close writes what is pending and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	return errors.Join(err, l.f.Close())
}

// ReadAll returns the entries of the log at path: its rotated part, then
// the current one; and the offset in the current one to follow it from
// (Read).
func ReadAll(path string) ([]Entry, int64, error) {
	old, _, err := Read(path+RotatedSuffix, 0)
	if err != nil {
		return nil, 0, err
	}
	cur, off, err := Read(path, 0)
	return append(old, cur...), off, err
}

// Read returns the entries of the file at path from byte offset from, and
// the offset after the last complete line (to continue from when
// following). Unreadable lines are skipped; a missing file has none. When
// the file is shorter than from, it was rotated: reading starts over at
// its beginning.
func Read(path string, from int64) ([]Entry, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, from, nil
	}
	if err != nil {
		return nil, from, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < from {
		from = 0
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, from, err
	}
	var out []Entry
	br := bufio.NewReader(f)
	off := from
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			break // end, or a line still being written
		}
		off += int64(len(line))
		var e Entry
		if json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
		if err != nil {
			break
		}
	}
	return out, off, nil
}

// Stats sums up a session's actions, like the seed's session stats.
type Stats struct {
	Actions     int     `json:"actions"`
	Successes   int     `json:"successes"`
	Failures    int     `json:"failures"`
	SuccessRate float64 `json:"success_rate"`
	DurationMS  float64 `json:"total_duration_ms"`
}

// Summarize computes the stats of entries (of one session, or all when
// session is empty).
func Summarize(entries []Entry, session string) Stats {
	var s Stats
	for _, e := range entries {
		if session != "" && e.Session != session || e.Phase == "log" {
			continue
		}
		s.Actions++
		switch e.Result {
		case "ok":
			s.Successes++
		case "failed":
			s.Failures++
		}
		s.DurationMS += e.DurationMS
	}
	if n := s.Successes + s.Failures; n > 0 {
		s.SuccessRate = float64(s.Successes) / float64(n)
	}
	return s
}
