package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/12fa/12fa/checkpoint"
	"github.com/12fa/12fa/internal/atomicfile"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/internal/layout"
	"github.com/12fa/12fa/state"
)

// Checkpoint is the record of one checkpoint, in .12fa/checkpoints/<id>.json
// (or the store's, see CheckpointStore).
type Checkpoint struct {
	ID       string    `json:"id"`
	Workflow string    `json:"workflow"`
	Run      string    `json:"run"`
	Step     string    `json:"step"`
	Attempt  int       `json:"attempt"`
	Time     time.Time `json:"time"`
	// Commit is the shadow commit (refs/12fa/<run>/<step>); empty when the
	// project is not in a git repository or git checkpoints are off.
	Commit string `json:"commit,omitempty"`
	Tree   string `json:"tree,omitempty"`
	// Host and Repo say where Commit is: the machine, and its repository's
	// root there.
	Host string `json:"host,omitempty"`
	Repo string `json:"repo,omitempty"`
	// Reused is set when nothing changed and the previous commit serves.
	Reused bool `json:"reused,omitempty"`
	// Files and Hashed count the tree's files and those read again.
	Files      int     `json:"files,omitempty"`
	Hashed     int     `json:"hashed,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// Label and Metadata are set on checkpoints made by CreateCheckpoint.
	Label    string            `json:"label,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// State sums up the run at that point.
	State struct {
		StepsCompleted int `json:"steps_completed"`
		Steps          int `json:"steps"`
		OutputSize     int `json:"output_size"`
	} `json:"state"`
}

// checkpointsDir is where checkpoint records go.
func checkpointsDir(projectDir string) string {
	return filepath.Join(StoreDir(projectDir), state.CheckpointsDir)
}

// CheckpointStore is a store that keeps checkpoint records itself, so that
// every machine sharing it sees them (pgstore); a store that is not one
// leaves them in the project's .12fa/checkpoints/.
type CheckpointStore interface {
	// PutCheckpoint keeps the record id (its JSON) of run ("" for a
	// manual checkpoint), replacing the one of the same id.
	PutCheckpoint(ctx context.Context, id, run string, body []byte) error
	// CheckpointRecords returns the records of run, every one when run is
	// empty.
	CheckpointRecords(ctx context.Context, run string) ([][]byte, error)
}

// writeRecord keeps cp where st keeps checkpoint records; durable: a file
// record is synced (a manual checkpoint's, which nothing else derives).
func writeRecord(st state.Store, projectDir string, cp Checkpoint, durable bool) error {
	b, err := jsonenc.MarshalIndent(cp)
	if err != nil {
		return err
	}
	if cs, ok := st.(CheckpointStore); ok {
		return cs.PutCheckpoint(context.Background(), cp.ID, cp.Run, b)
	}
	path := filepath.Join(checkpointsDir(projectDir), cp.ID+".json")
	if durable {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return atomicfile.Write(path, append(b, '\n'), 0o644)
	}
	// Derived from the journal, so written without fsync: it adds no
	// fsync to the step.
	return atomicfile.WriteRelaxed(path, append(b, '\n'), 0o644)
}

// loadRecords returns the checkpoint records st keeps, by id: those of run
// (every one when run is empty). Files are all read: the directory holds
// every run's.
func loadRecords(st state.Store, projectDir, run string) (map[string]Checkpoint, error) {
	cs, ok := st.(CheckpointStore)
	if !ok {
		return readRecords(checkpointsDir(projectDir))
	}
	bodies, err := cs.CheckpointRecords(context.Background(), run)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Checkpoint, len(bodies))
	for _, b := range bodies {
		var cp Checkpoint
		if err := json.Unmarshal(b, &cp); err != nil {
			return nil, fmt.Errorf("checkpoint record: %w", err)
		}
		out[cp.ID] = cp
	}
	return out, nil
}

// hostname names this machine in checkpoint records.
var hostname = func() string {
	h, _ := os.Hostname()
	return h
}()

// in reports whether cp's commit is in the repository g (a record that
// says nothing of where is taken to be local).
func (cp Checkpoint) in(g *checkpoint.Git) bool {
	return cp.Host == "" || (cp.Host == hostname && cp.Repo == g.Root())
}

// where says where cp's commit is.
func (cp Checkpoint) where() string { return cp.Host + ":" + cp.Repo }

// gitFor returns the project's checkpointer, or nil (with one warning) when
// the project is in no git repository or git checkpoints are off.
func (r *Runtime) gitFor(enabled *bool) *checkpoint.Git {
	if enabled != nil && !*enabled {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.git != nil || r.gitErr != nil {
		return r.git
	}
	g, err := checkpoint.Open(r.cfg.ProjectDir, filepath.Join(checkpointsDir(r.cfg.ProjectDir), layout.StatCache))
	if err != nil {
		r.gitErr = err
		if enabled != nil || !errors.Is(err, checkpoint.ErrNotRepo) {
			r.log.Warn("git checkpoints skipped", "error", err)
		}
		return nil
	}
	r.git = g
	return g
}

// checkpoint records step i's completion as a shadow commit of the working
// tree, with a record of it, when git checkpoints are on. Without git there
// is nothing to write: the journal is the state checkpoint, and Checkpoints
// derives its record. Failures are warned about, never fatal: the journal
// already holds the step's result.
func (x *execution) checkpoint(i, attempt int, out json.RawMessage) {
	g := x.rt.gitFor(x.m.Checkpoint.Git)
	if g == nil {
		return
	}
	s := x.steps[i].step
	start := x.rt.cfg.Now()
	cp := Checkpoint{ID: x.runID + "." + s.ID, Workflow: x.m.Workflow.Name, Run: x.runID, Step: s.ID, Attempt: attempt, Time: start.UTC()}
	meta := checkpoint.Meta{
		Ref:     x.runID + "/" + s.ID,
		Message: fmt.Sprintf("12fa: %s: step %s", x.m.Workflow.Name, s.ID),
		Trailers: map[string]string{"12fa-Workflow": x.m.Workflow.Name, "12fa-Run": x.runID,
			"12fa-Step": s.ID, "12fa-Attempt": strconv.Itoa(attempt)},
		Parent: x.lastCommit,
		Time:   start,
	}
	commit := g.Checkpoint
	if x.m.Checkpoint.AutoCommit {
		commit = g.CommitToBranch
	}
	res, err := commit(meta)
	if err != nil {
		x.rt.log.Warn("git checkpoint failed", "step", s.ID, "error", err)
	} else {
		cp.Commit, cp.Tree, cp.Reused, cp.Files, cp.Hashed = res.Commit, res.Tree, res.Reused, res.Files, res.Hashed
		cp.Host, cp.Repo = hostname, g.Root()
		x.lastCommit = res.Commit
	}
	cp.State.Steps = len(x.steps)
	cp.State.StepsCompleted = x.res.Ran + x.res.Replayed + x.res.MarkedDone
	cp.State.OutputSize = len(out)
	cp.DurationMS = ms(x.rt.cfg.Now().Sub(start))
	if err := writeRecord(x.rt.store, x.rt.cfg.ProjectDir, cp, false); err != nil {
		x.rt.log.Warn("checkpoint record not written", "step", s.ID, "error", err)
	}
}

// checkpoints lists a project's checkpoints, oldest first: one for each
// step the store has completed (with its git commit when one was
// recorded), and the manual ones. A record older than its step's latest
// attempt (left from before a restore) is not used. With run set, only that
// run's checkpoints are listed (and no manual ones); otherwise those of the
// recent most recently active runs (all when 0).
func checkpoints(st state.Store, projectDir, run string, recent int) ([]Checkpoint, error) {
	records, err := loadRecords(st, projectDir, run)
	if err != nil {
		return nil, err
	}
	var runs []state.Run
	if run != "" {
		r, err := st.Run(run)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	} else {
		infos, err := st.List(state.ListOptions{Limit: recent})
		if err != nil {
			return nil, err
		}
		for _, info := range infos {
			r, err := st.Run(info.ID)
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
		}
	}
	var out []Checkpoint
	for i := range runs {
		out = append(out, runCheckpoints(records, &runs[i])...)
	}
	for id, cp := range records {
		if strings.HasPrefix(id, "manual.") && run == "" {
			out = append(out, cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// runCheckpoints are the checkpoints of r's completed steps, in step order:
// their records, or derived from the journal where there is none.
func runCheckpoints(records map[string]Checkpoint, r *state.Run) []Checkpoint {
	var out []Checkpoint
	done := 0
	for _, s := range r.Steps {
		if s.Status != state.StepCompleted {
			continue
		}
		done++
		id := r.ID + "." + s.ID
		cp, ok := records[id]
		if !ok || cp.Time.Before(s.StartedAt) {
			cp = Checkpoint{ID: id, Workflow: r.Workflow, Run: r.ID, Step: s.ID, Attempt: s.Attempt, Time: s.EndedAt}
			cp.State.Steps, cp.State.StepsCompleted, cp.State.OutputSize = len(r.Steps), done, s.OutputSize
		}
		out = append(out, cp)
	}
	return out
}

func findCheckpoint(st state.Store, projectDir, id string) (*Checkpoint, error) {
	// The run's id is a prefix ending before a dot; both ids may hold dots.
	for i := strings.IndexByte(id, '.'); i > 0; i = nextDot(id, i) {
		if _, err := st.Run(id[:i]); err != nil {
			continue
		}
		cps, err := checkpoints(st, projectDir, id[:i], 0)
		if err != nil {
			return nil, err
		}
		for j := range cps {
			if cps[j].ID == id {
				return &cps[j], nil
			}
		}
	}
	return nil, fmt.Errorf("restore: no checkpoint %q (12fa checkpoints lists them)", id)
}

// lastCommit returns the commit of the last checkpoint of run's completed
// steps that has one in this repository, read from their checkpoint
// records: a resumed run's next checkpoint follows it. enabled is the
// manifest's [checkpoint] git.
func (r *Runtime) lastCommit(run state.Run, enabled *bool) string {
	g := r.gitFor(enabled)
	if g == nil {
		return ""
	}
	record := func(id string) (cp Checkpoint, ok bool) {
		b, err := os.ReadFile(filepath.Join(checkpointsDir(r.cfg.ProjectDir), id+".json"))
		return cp, err == nil && json.Unmarshal(b, &cp) == nil
	}
	if _, shared := r.store.(CheckpointStore); shared {
		records, err := loadRecords(r.store, r.cfg.ProjectDir, run.ID)
		if err != nil {
			r.log.Warn("checkpoint records not read", "run", run.ID, "error", err)
		}
		record = func(id string) (Checkpoint, bool) {
			cp, ok := records[id]
			return cp, ok
		}
	}
	for i := len(run.Steps) - 1; i >= 0; i-- {
		s := run.Steps[i]
		if s.Status != state.StepCompleted {
			continue
		}
		// Another repository's commit (another machine's) is not in this
		// one.
		if cp, ok := record(run.ID + "." + s.ID); ok && cp.Commit != "" && cp.in(g) && !cp.Time.Before(s.StartedAt) {
			return cp.Commit
		}
	}
	return ""
}

// removeCheckpoints removes what the checkpoints of runs left: their
// records and their shadow refs (refs/12fa/<run>/…).
func (r *Runtime) removeCheckpoints(runs []string) error {
	gone := make(map[string]bool, len(runs))
	for _, id := range runs {
		gone[id] = true
	}
	dir := checkpointsDir(r.cfg.ProjectDir)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".json")
		for i := strings.IndexByte(name, '.'); i > 0; i = nextDot(name, i) {
			if gone[name[:i]] {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				break
			}
		}
	}
	if g := r.gitFor(nil); g != nil {
		return g.RemoveRefs(func(name string) bool {
			run, _, _ := strings.Cut(name, "/")
			return gone[run]
		})
	}
	return nil
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// PruneOptions say which finished runs Prune removes (state.PruneOptions).
type PruneOptions = state.PruneOptions

// Prune removes finished runs last updated before o.OlderThan (keeping
// the o.Keep most recent), with their checkpoint records, shadow refs and
// the blobs no other run refers to. A prune a crash interrupted is
// finished first (New does that too).
func (r *Runtime) Prune(ctx context.Context, o PruneOptions) ([]state.RunInfo, error) {
	return r.store.Prune(o, r.removeCheckpoints)
}

// readRecords reads the checkpoint records in dir, by id.
func readRecords(dir string) (map[string]Checkpoint, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]Checkpoint{}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" || e.Name() == layout.StatCache {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var cp Checkpoint
		if err := json.Unmarshal(b, &cp); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out[cp.ID] = cp
	}
	return out, nil
}

// CreateCheckpoint records the project's working tree now, outside any
// run, with a label and metadata (the 12-factor-agents package's
// createCheckpoint). Without a git repository only the record is written.
func (r *Runtime) CreateCheckpoint(label string, metadata map[string]string) (Checkpoint, error) {
	now := r.cfg.Now()
	cp := Checkpoint{ID: "manual." + now.UTC().Format("20060102T150405.000000000"), Label: label, Metadata: metadata, Time: now.UTC()}
	if g := r.gitFor(nil); g != nil {
		res, err := g.Checkpoint(checkpoint.Meta{Ref: "manual/" + strings.TrimPrefix(cp.ID, "manual."),
			Message: "12fa checkpoint: " + label, Trailers: metadata, Time: now})
		if err != nil {
			return cp, err
		}
		cp.Commit, cp.Tree, cp.Files, cp.Hashed = res.Commit, res.Tree, res.Files, res.Hashed
		cp.Host, cp.Repo = hostname, g.Root()
	}
	cp.DurationMS = ms(r.cfg.Now().Sub(now))
	return cp, writeRecord(r.store, r.cfg.ProjectDir, cp, true)
}
