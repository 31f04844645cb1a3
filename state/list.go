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

// List returns the runs o selects, the most recently active first: the
// runs the journal holds, then those of the index read from its end, so
// that a page of recent runs reads only the end of the index however long
// the history.
func (s *FileStore) List(o ListOptions) ([]RunInfo, error) {
	var out []RunInfo
	seen := map[string]bool{}
	var hot []RunInfo
	for _, r := range s.hot() {
		seen[r.ID] = true
		if info := r.Info(); o.match(&info) {
			hot = append(hot, info)
		}
	}
	full := func() bool { return o.Limit > 0 && len(out) >= o.Limit }
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
			for len(hot) > 0 && !hot[0].UpdatedAt.Before(info.UpdatedAt) && !full() {
				out, hot = append(out, hot[0]), hot[1:]
			}
			if full() {
				return false
			}
			info.Seq, info.Blobs = 0, nil
			out = append(out, *info)
			return !full()
		}, o.prefilter())
		if err != nil {
			return nil, err
		}
	}
	for len(hot) > 0 && !full() {
		out, hot = append(out, hot[0]), hot[1:]
	}
	return out, nil
}
