package state

import (
	"bytes"
	"slices"

	"github.com/12fa/12fa/internal/jsonenc"
)

// ListOptions selects runs.
type ListOptions struct {
	// Limit bounds how many runs are returned; 0 returns them all.
	Limit int
	// Status, when set, keeps runs in one of these statuses.
	Status []RunStatus
	// Workflow and Manifest, when set, keep the runs of that workflow
	// name and manifest path.
	Workflow, Manifest string
}

func (o *ListOptions) match(info *RunInfo) bool {
	return (len(o.Status) == 0 || slices.Contains(o.Status, info.Status)) &&
		(o.Workflow == "" || info.Workflow == o.Workflow) &&
		(o.Manifest == "" || info.Manifest == o.Manifest)
}

// onlyUnfinished reports whether every status o keeps is one of an
// unfinished run, which the journal alone holds.
func (o *ListOptions) onlyUnfinished() bool {
	if len(o.Status) == 0 {
		return false
	}
	for _, st := range o.Status {
		if st.Finished() {
			return false
		}
	}
	return true
}

// prefilter skips index lines that cannot match before they are decoded.
func (o *ListOptions) prefilter() func([]byte) bool {
	var needles [][]byte
	if o.Workflow != "" {
		needles = append(needles, field("workflow", o.Workflow))
	}
	if o.Manifest != "" {
		needles = append(needles, field("manifest", o.Manifest))
	}
	var statuses [][]byte
	for _, st := range o.Status {
		statuses = append(statuses, field("status", string(st)))
	}
	if len(needles) == 0 && len(statuses) == 0 {
		return nil
	}
	return func(line []byte) bool {
		for _, n := range needles {
			if !bytes.Contains(line, n) {
				return false
			}
		}
		return len(statuses) == 0 || slices.ContainsFunc(statuses, func(n []byte) bool { return bytes.Contains(line, n) })
	}
}

func field(name, value string) []byte {
	return append([]byte(`"`+name+`":`), jsonenc.String(value)...)
}

// List returns the runs o selects, the most recently active first (see
// Walk).
func (s *FileStore) List(o ListOptions) ([]RunInfo, error) {
	var out []RunInfo
	err := s.Walk(o, func(info RunInfo) bool {
		out = append(out, info)
		return true
	})
	return out, err
}

// Walk calls fn with the runs o selects, the most recently active first,
// until fn returns false or o.Limit runs were seen: the runs the journal
// holds, merged with those of the index read from its end, so that a page
// of recent runs reads only the end of the index however long the history,
// and all of them take the memory of their ids, not of their list.
func (s *FileStore) Walk(o ListOptions, fn func(RunInfo) bool) error {
	seen := map[string]bool{}
	var hot []RunInfo
	for _, r := range s.hot() {
		seen[r.ID] = true
		if info := r.Info(); o.match(&info) {
			hot = append(hot, info)
		}
	}
	n := 0
	stopped := false
	emit := func(info RunInfo) bool {
		if o.Limit > 0 && n >= o.Limit {
			stopped = true
			return false
		}
		n++
		if !fn(info) {
			stopped = true
			return false
		}
		return true
	}
	// Merge by UpdatedAt: the index is in the order runs finished, which
	// is the order of their last update.
	if !o.onlyUnfinished() {
		err := s.indexBackward(func(_ []byte, info *RunInfo) bool {
			if seen[info.ID] {
				return true
			}
			seen[info.ID] = true
			if !o.match(info) {
				return true
			}
			for len(hot) > 0 && !hot[0].UpdatedAt.Before(info.UpdatedAt) {
				if !emit(hot[0]) {
					return false
				}
				hot = hot[1:]
			}
			info.Seq, info.Blobs = 0, nil
			return emit(*info)
		}, o.prefilter())
		if err != nil || stopped {
			return err
		}
	}
	for _, info := range hot {
		if !emit(info) {
			break
		}
	}
	return nil
}
