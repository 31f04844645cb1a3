// Package features tracks a project's features in .12fa/features.json, like
// the 12-factor-agents package's FeatureTracker: a name, a priority and a
// status for each, changed by people or steps and kept between runs.
//
// The file has its own lock (features.lock), held for a read-modify-write;
// writes replace the file atomically. features imports nothing of 12fa's
// but internal/atomicfile.
package features

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/12fa/12fa/internal/atomicfile"
)

// File names in the store directory.
const (
	FileName = "features.json"
	LockName = "features.lock"
)

// Statuses and priorities.
var (
	Statuses   = []string{"pending", "in-progress", "complete", "blocked"}
	Priorities = []string{"low", "medium", "high", "critical"}
)

// Errors.
var (
	ErrNotFound  = errors.New("no such feature")
	ErrBadStatus = errors.New("unknown status")
	ErrBadPrio   = errors.New("unknown priority")
)

// Feature is one tracked feature.
type Feature struct {
	ID        int       `json:"id"`
	Name      string    `json:"name"`
	Priority  string    `json:"priority"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type file struct {
	Version  int       `json:"version"`
	Features []Feature `json:"features"`
}

// Tracker is the features of one store directory.
type Tracker struct {
	dir string
	now func() time.Time
}

// New returns the Tracker of the store directory dir.
func New(dir string, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{dir: dir, now: now}
}

// Add tracks a new feature, pending, with priority "medium" when empty.
func (t *Tracker) Add(name, priority string) (Feature, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Feature{}, errors.New("a feature needs a name")
	}
	if priority == "" {
		priority = "medium"
	}
	if !slices.Contains(Priorities, priority) {
		return Feature{}, fmt.Errorf("%w %q (use one of: %s)", ErrBadPrio, priority, strings.Join(Priorities, ", "))
	}
	var out Feature
	err := t.update(func(f *file) error {
		id := 1
		for _, x := range f.Features {
			id = max(id, x.ID+1)
		}
		now := t.now().UTC()
		out = Feature{ID: id, Name: name, Priority: priority, Status: "pending", CreatedAt: now, UpdatedAt: now}
		f.Features = append(f.Features, out)
		return nil
	})
	return out, err
}

// SetStatus changes a feature's status.
func (t *Tracker) SetStatus(id int, status string) (Feature, error) {
	if !slices.Contains(Statuses, status) {
		return Feature{}, fmt.Errorf("%w %q (use one of: %s)", ErrBadStatus, status, strings.Join(Statuses, ", "))
	}
	var out Feature
	err := t.update(func(f *file) error {
		for i := range f.Features {
			if f.Features[i].ID == id {
				f.Features[i].Status, f.Features[i].UpdatedAt = status, t.now().UTC()
				out = f.Features[i]
				return nil
			}
		}
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	})
	return out, err
}

// List returns the features, all of them or those with the given status.
func (t *Tracker) List(status string) ([]Feature, error) {
	if status != "" && !slices.Contains(Statuses, status) {
		return nil, fmt.Errorf("%w %q (use one of: %s)", ErrBadStatus, status, strings.Join(Statuses, ", "))
	}
	f, err := t.read()
	if err != nil {
		return nil, err
	}
	var out []Feature
	for _, x := range f.Features {
		if status == "" || x.Status == status {
			out = append(out, x)
		}
	}
	return out, nil
}

func (t *Tracker) update(fn func(*file) error) error {
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return err
	}
	lock := flock.New(filepath.Join(t.dir, LockName))
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", LockName, err)
	}
	defer lock.Unlock()
	f, err := t.read()
	if err != nil {
		return err
	}
	if err := fn(&f); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(t.dir, FileName), append(b, '\n'), 0o644)
}

func (t *Tracker) read() (file, error) {
	name := filepath.Join(t.dir, FileName)
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return file{Version: 1}, nil
	}
	if err != nil {
		return file{}, err
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return file{}, fmt.Errorf("%s is corrupt (%v); it was left as it is", name, err)
	}
	return f, nil
}
