// Package inputs keeps the questions steps ask people, and their answers, in
// .12fa/human-inputs.json (the 12-factor-agents package's file).
//
// The file has a lock of its own (human-inputs.lock), held only for a
// read-modify-write, so that `12fa respond` can answer while a run holds
// the store's lock. Writes replace the file atomically (temp file, fsync,
// rename, directory fsync).
//
// inputs imports abi only; runtime wires it to the host.
package inputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/internal/jsondoc"
	"github.com/12fa/12fa/internal/layout"
)

// File names in the store directory.
const (
	FileName = layout.InputsFile
	LockName = layout.InputsLock
)

// Errors.
var (
	// ErrNotFound: no question has the given id.
	ErrNotFound = errors.New("no such question")
	// ErrAnswered: the question has an answer already.
	ErrAnswered = errors.New("question already answered")
	// ErrBadAnswer: the answer is not one of the question's options.
	ErrBadAnswer = errors.New("answer is not one of the options")
	// ErrExpired: the question's timeout passed with no answer and no
	// default.
	ErrExpired = errors.New("question expired without an answer")
	// ErrSuperseded: the question was superseded; nothing waits for it.
	ErrSuperseded = errors.New("question superseded")
)

// Status of a question.
const (
	Pending  = "pending"
	Answered = "answered"
	// Superseded: the attempt that asked it was followed by one that did
	// not (the plugin changed, the step completed or was marked done); the
	// step no longer waits for it. Asking it again makes it pending again.
	Superseded = "superseded"
)

// Question is one question a step asked.
type Question struct {
	ID         string    `json:"id"`
	Run        string    `json:"run"`
	Step       string    `json:"step"`
	Key        string    `json:"key"`
	Question   string    `json:"question"`
	Options    []string  `json:"options,omitempty"`
	Default    string    `json:"default,omitempty"`
	Status     string    `json:"status"`
	Answer     string    `json:"answer,omitempty"`
	AskedAt    time.Time `json:"asked_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	// SupersededAt is when the question was superseded.
	SupersededAt time.Time `json:"superseded_at,omitzero"`
	// AnsweredBy is "person", or "default" when the question expired.
	AnsweredBy string `json:"answered_by,omitempty"`
}

// expire answers q with its default if it has expired; it reports whether
// q changed, and ErrExpired when it expired with no default.
func (q *Question) expire(now time.Time) (bool, error) {
	if q.Status != Pending || q.ExpiresAt.IsZero() || now.Before(q.ExpiresAt) {
		return false, nil
	}
	if q.Default == "" {
		return false, fmt.Errorf("%w: %s (%q) expired at %s", ErrExpired, q.ID, q.Question, q.ExpiresAt.Format(time.RFC3339))
	}
	q.Status, q.Answer, q.AnsweredAt, q.AnsweredBy = Answered, q.Default, now, "default"
	return true, nil
}

type file struct {
	Version   int        `json:"version"`
	Questions []Question `json:"questions"`
}

// Store keeps the questions of one store: the file human-inputs.json of a
// store directory (New), or another backend (NewWith; the PostgreSQL
// store's questions table). The rules (answers checked against options,
// defaults at expiry, superseding) are the Store's, whatever keeps them.
type Store struct {
	b   Backend
	now func() time.Time
}

// Backend keeps questions for a Store.
type Backend interface {
	// Update calls fn, under a lock held until the write, with the
	// questions whose id is one of ids or whose run is run (it may pass
	// more), and when fn reports a change writes back the questions it
	// returns (those passed, changed, and new ones appended).
	Update(ids []string, run string, fn func(qs []Question) ([]Question, bool, error)) error
	// List returns every question, oldest first.
	List() ([]Question, error)
}

// New returns the Store of the store directory dir.
func New(dir string, now func() time.Time) *Store { return NewWith(fileBackend{dir}, now) }

// NewWith returns a Store whose questions b keeps.
func NewWith(b Backend, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{b: b, now: now}
}

// ID returns the id of the question key of a run's step.
func ID(run, step, key string) string {
	sum := sha256.Sum256([]byte(run + "\x00" + step + "\x00" + key))
	return "q-" + hex.EncodeToString(sum[:5])
}

// Ask returns the question's answer when it has one; otherwise it records
// the question (durably) as pending.
func (s *Store) Ask(run, step string, req abi.InputRequest) (abi.InputResponse, error) {
	if req.Key == "" || req.Question == "" {
		return abi.InputResponse{}, errors.New("a question needs a key and a question")
	}
	if req.Default != "" && len(req.Options) > 0 && !slices.Contains(req.Options, req.Default) {
		return abi.InputResponse{}, fmt.Errorf("default %q is not one of the options", req.Default)
	}
	var ttl time.Duration
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			return abi.InputResponse{}, fmt.Errorf("timeout %q is not a positive duration", req.Timeout)
		}
		ttl = d
	}
	id := ID(run, step, req.Key)
	var resp abi.InputResponse
	err := s.b.Update([]string{id}, "", func(qs []Question) ([]Question, bool, error) {
		now := s.now().UTC()
		for i := range qs {
			q := &qs[i]
			if q.ID == id {
				if q.Status == Superseded {
					// Asked again: it matters again.
					q.Status, q.SupersededAt, q.AskedAt, q.ExpiresAt = Pending, time.Time{}, now, time.Time{}
					if ttl > 0 {
						q.ExpiresAt = now.Add(ttl)
					}
					resp = abi.InputResponse{ID: id}
					return qs, true, nil
				}
				changed, err := q.expire(now)
				resp = abi.InputResponse{ID: id, Answered: q.Status == Answered, Answer: q.Answer}
				return qs, changed, err
			}
		}
		q := Question{ID: id, Run: run, Step: step, Key: req.Key, Question: req.Question,
			Options: req.Options, Default: req.Default, Status: Pending, AskedAt: now}
		if ttl > 0 {
			q.ExpiresAt = now.Add(ttl)
		}
		resp = abi.InputResponse{ID: id}
		return append(qs, q), true, nil
	})
	return resp, err
}

// Respond records the answer to question id. An answer must be one of the
// question's options when it has some; answering twice is refused.
func (s *Store) Respond(id, answer string) (Question, error) {
	var out Question
	err := s.b.Update([]string{id}, "", func(qs []Question) ([]Question, bool, error) {
		for i := range qs {
			q := &qs[i]
			if q.ID != id {
				continue
			}
			if q.Status == Answered {
				return nil, false, fmt.Errorf("%w: %s was answered %q at %s", ErrAnswered, id, q.Answer, q.AnsweredAt.Format(time.RFC3339))
			}
			if q.Status == Superseded {
				return nil, false, fmt.Errorf("%w: %s: the attempt that asked it was superseded at %s and the step no longer waits for it",
					ErrSuperseded, id, q.SupersededAt.Format(time.RFC3339))
			}
			if len(q.Options) > 0 && !slices.Contains(q.Options, answer) {
				return nil, false, fmt.Errorf("%w: %q (choose one of: %s)", ErrBadAnswer, answer, strings.Join(q.Options, ", "))
			}
			q.Status, q.Answer, q.AnsweredAt, q.AnsweredBy = Answered, answer, s.now().UTC(), "person"
			out = *q
			return qs, true, nil
		}
		return nil, false, fmt.Errorf("%w: %q (12fa inputs lists the open ones)", ErrNotFound, id)
	})
	return out, err
}

// Supersede marks the pending questions of a run's step that are not in
// keep as superseded, and returns how many it marked.
func (s *Store) Supersede(run, step string, keep []string) (int, error) {
	n := 0
	err := s.b.Update(nil, run, func(qs []Question) ([]Question, bool, error) {
		now := s.now().UTC()
		for i := range qs {
			q := &qs[i]
			if q.Run == run && q.Step == step && q.Status == Pending && !slices.Contains(keep, q.ID) {
				q.Status, q.SupersededAt = Superseded, now
				n++
			}
		}
		return qs, n > 0, nil
	})
	return n, err
}

// Get returns the questions with the given ids, in that order.
func (s *Store) Get(ids []string) ([]Question, error) {
	var all []Question
	err := s.b.Update(ids, "", func(qs []Question) ([]Question, bool, error) {
		all = qs
		return qs, false, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Question, 0, len(ids))
	for _, id := range ids {
		for _, q := range all {
			if q.ID == id {
				out = append(out, q)
			}
		}
	}
	return out, nil
}

// Wait blocks until every question in ids is answered (a person's answer,
// or a default when it expires), ctx is done, or one expires with no
// default (ErrExpired). It polls the file, so answers given by another
// process (12fa respond) are seen.
func (s *Store) Wait(ctx context.Context, ids []string) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		pending, _, err := s.Expire(ids)
		if err != nil || pending == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Expire answers the questions in ids that expired with their defaults,
// and counts those still pending and those it answered; ErrExpired for
// one that expired with no default.
func (s *Store) Expire(ids []string) (pending, answered int, err error) {
	err = s.b.Update(ids, "", func(qs []Question) ([]Question, bool, error) {
		pending, answered = 0, 0
		for i := range qs {
			q := &qs[i]
			if !slices.Contains(ids, q.ID) {
				continue
			}
			c, err := q.expire(s.now().UTC())
			if err != nil {
				return qs, answered > 0, err
			}
			if c {
				answered++
			}
			if q.Status == Pending {
				pending++ // answered or superseded: nothing to wait for
			}
		}
		return qs, answered > 0, nil
	})
	return pending, answered, err
}

// List returns every question, oldest first.
func (s *Store) List() ([]Question, error) { return s.b.List() }

// fileBackend keeps the questions in a store directory's
// human-inputs.json.
type fileBackend struct{ dir string }

func (b fileBackend) Update(_ []string, _ string, fn func([]Question) ([]Question, bool, error)) error {
	f := file{Version: 1}
	return jsondoc.Update(filepath.Join(b.dir, FileName), filepath.Join(b.dir, LockName), &f, func() (bool, error) {
		qs, changed, err := fn(f.Questions)
		if changed {
			f.Questions = qs
		}
		return changed, err
	})
}

func (b fileBackend) List() ([]Question, error) {
	f := file{Version: 1}
	return f.Questions, jsondoc.Read(filepath.Join(b.dir, FileName), &f)
}
