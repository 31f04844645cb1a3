// Package features tracks a project's features in .12fa/features.json, like
// the 12-factor-agents package's FeatureTracker: a name, a priority and a
// status for each, changed by people or steps and kept between runs.
//
// The file has its own lock (features.lock), held for a read-modify-write;
// writes replace the file atomically (internal/jsondoc). features imports
// nothing else of 12fa's.
package features

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/12fa/12fa/internal/jsondoc"
	"github.com/12fa/12fa/internal/layout"
)

// File names in the store directory.
const (
	FileName = layout.FeaturesFile
	LockName = layout.FeaturesLock
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
	f := file{Version: 1}
	return jsondoc.Update(filepath.Join(t.dir, FileName), filepath.Join(t.dir, LockName), &f,
		func() (bool, error) { return true, fn(&f) })
}

func (t *Tracker) read() (file, error) {
	f := file{Version: 1}
	return f, jsondoc.Read(filepath.Join(t.dir, FileName), &f)
}
