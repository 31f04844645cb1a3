package runtime

import (
	"sort"

	"github.com/hashicorp/go-hclog"

	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/state"
)

// View reads a project's store without taking its lock, so it works while
// another process runs a workflow: what status, checkpoints and inputs
// show. It sees the store as it was when opened (OpenView again to see
// later changes).
type View struct {
	dir   string
	store state.Store
}

// OpenView opens a read-only view of a project's store.
func OpenView(projectDir string, log hclog.Logger) (*View, error) {
	st, err := state.Open(state.Config{Dir: StoreDir(projectDir), ReadOnly: true}, log)
	if err != nil {
		return nil, err
	}
	return &View{dir: projectDir, store: st}, nil
}

// NewView is a view of the runs in st (a pgstore.Store, say), with the
// checkpoint records and questions st keeps, or else the project's;
// Close closes st.
func NewView(projectDir string, st state.Store) *View { return &View{dir: projectDir, store: st} }

// Close releases the view.
func (v *View) Close() error { return v.store.Close() }

// Runs lists the runs o selects, the most recently active first.
func (v *View) Runs(o state.ListOptions) ([]state.RunInfo, error) { return v.store.List(o) }

// Walk calls fn with the runs o selects, the most recently active first,
// until fn returns false, keeping no list of them.
func (v *View) Walk(o state.ListOptions, fn func(state.RunInfo) bool) error {
	if w, ok := v.store.(interface {
		Walk(state.ListOptions, func(state.RunInfo) bool) error
	}); ok {
		return w.Walk(o, fn)
	}
	infos, err := v.store.List(o)
	for _, info := range infos {
		if !fn(info) {
			break
		}
	}
	return err
}

// Run returns a run with its steps; ErrRunNotFound for an unknown id.
func (v *View) Run(id string) (state.Run, error) { return runOf(v.store, id) }

// Checkpoints lists the checkpoints of run, oldest first; with run empty,
// those of the recent most recently active runs (of every run when 0) and
// the manual ones.
func (v *View) Checkpoints(run string, recent int) ([]Checkpoint, error) {
	if run != "" {
		if _, err := v.Run(run); err != nil {
			return nil, err
		}
	}
	return checkpoints(v.store, v.dir, run, recent)
}

// RunCheckpoints lists the checkpoints of r (read already), oldest first.
func (v *View) RunCheckpoints(r state.Run) ([]Checkpoint, error) {
	records, err := loadRecords(v.store, v.dir, r.ID)
	if err != nil {
		return nil, err
	}
	out := runCheckpoints(records, &r)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Checkpoint returns the checkpoint with the given id (<run>.<step>).
func (v *View) Checkpoint(id string) (Checkpoint, error) {
	cp, err := findCheckpoint(v.store, v.dir, id)
	if err != nil {
		return Checkpoint{}, err
	}
	return *cp, nil
}

// Questions lists the questions steps asked, answered or not.
func (v *View) Questions() ([]inputs.Question, error) {
	return questionsOf(StoreDir(v.dir), v.store, nil).List()
}

// Respond answers question id (see inputs.Store.Respond): in the store's
// questions, from any process. A run that waited only for it goes on at
// its next resume, or, in a store with a queue, with the next worker.
func (v *View) Respond(id, answer string) (inputs.Question, error) {
	return questionsOf(StoreDir(v.dir), v.store, nil).Respond(id, answer)
}
