package pgstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/12fa/12fa/internal/pgtest"
	"github.com/12fa/12fa/internal/testutil"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/pgstore"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
	"github.com/12fa/12fa/state/statetest"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, testutil.MainWithSummary))
}

// TestStore_Conformance runs the store conformance suite against a real
// PostgreSQL (a throwaway cluster, or $TWELVEFA_TEST_PG): the same checks
// the file store passes, the crash check killing a writer process that
// appends through its own connections.
func TestStore_Conformance(t *testing.T) {
	statetest.Run(t, statetest.Harness{
		New: func(t *testing.T) string { return pgtest.URL(t) },
		Open: func(_ testing.TB, url string) (state.Store, error) {
			return pgstore.Open(context.Background(), pgstore.Config{URL: url}, nil)
		},
	})
}

// TestStore_StaleWriterIsFenced: once another holder has a run's lease (a
// new epoch, as a takeover gives it), the old holder's next append is
// refused with ErrLeaseLost and writes nothing; a reader sees the run as
// the records before it left it.
func TestStore_StaleWriterIsFenced(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, err := pgstore.Open(ctx, pgstore.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	steps := []state.StepDecl{{ID: "s00", Plugin: "p"}, {ID: "s01", Plugin: "p"}}
	if err := a.Append(ctx, &state.Record{Type: state.EventRunStarted, Run: "r1", Workflow: "w", Steps: steps},
		&state.Record{Type: state.EventStepStarted, Run: "r1", Step: "s00", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE runs SET owner = 'another', epoch = epoch + 1 WHERE id = 'r1'"); err != nil {
		t.Fatal(err)
	}
	err = a.Append(ctx, &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "s00", Attempt: 1, Output: []byte(`1`)})
	if !errors.Is(err, pgstore.ErrLeaseLost) {
		t.Fatalf("the stale holder's append: %v, want ErrLeaseLost", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM records WHERE run_id = 'r1'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d records of r1 (%v), want the 2 written before the lease was lost", n, err)
	}
	b, err := pgstore.Open(ctx, pgstore.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := b.Run("r1")
	if err != nil || r.Steps[0].Status != state.StepRunning {
		t.Fatalf("run r1 read by another: %+v, %v", r.Steps, err)
	}
	// The stale holder's next try is refused too: it no longer holds the run.
	if err := a.Append(ctx, &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "s00", Attempt: 1}); !errors.Is(err, state.ErrClaimed) {
		t.Fatalf("after losing the lease: %v, want ErrClaimed", err)
	}
}

// TestRuntime_OnPostgres: the engine runs a workflow with its runs in
// PostgreSQL (runtime.Config.Store), and a second process, on a store of
// its own on the same database, sees the run completed and replays its
// steps from the records instead of running them.
func TestRuntime_OnPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	project := t.TempDir()
	open := func() *runtime.Runtime { return openRuntime(t, url, project) }
	m, err := manifest.New(testutil.ExamplePath(t, ""), manifest.Workflow{Name: "pg"}, manifest.Defaults{},
		manifest.Step{ID: "a", Plugin: "effect/effect.wasm", Idempotent: true},
		manifest.Step{ID: "b", Plugin: "effect/effect.wasm", Idempotent: true, Input: map[string]any{"fail_until_attempt": 2},
			Retry: &manifest.Retry{MaxAttempts: 2}},
		manifest.Step{ID: "c", Plugin: "effect/effect.wasm", Idempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	rt := open()
	res, err := rt.Run(ctx, m, runtime.RunOptions{})
	if err != nil || res.Status != state.RunCompleted || res.Ran != 3 || res.Steps[1].Attempt != 2 {
		t.Fatalf("run: %v, %+v", err, res)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rt = open()
	defer rt.Close(ctx)
	runs, err := rt.Runs(state.ListOptions{Workflow: "pg"})
	if err != nil || len(runs) != 1 || runs[0].Status != state.RunCompleted || runs[0].Done != 3 {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	again, err := rt.Run(ctx, m, runtime.RunOptions{RunID: res.RunID})
	if err != nil || again.Ran != 0 || again.Replayed != 3 || string(again.Output("c")) != string(res.Output("c")) {
		t.Fatalf("again: %v, %+v", err, again)
	}
}

// TestMigrate_3KeepsListAndPrune: a database an older 12fa wrote (schema
// 2: records with a foreign key, runs listed by an index of updated_at)
// migrated to 3 lists its runs in the same order, most recently active
// first, and prune removes a finished run with its records and progress
// entries (no foreign key cascades them now).
func TestMigrate_3KeepsListAndPrune(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pgstore.MigrateTo(ctx, pool, 2); err != nil {
		t.Fatal(err)
	}
	// As schema 2 held them: old finished, recent finished, unfinished
	// (updated between them), each with a record and a progress entry.
	if _, err := pool.Exec(ctx, `INSERT INTO runs (id, workflow, state, status, steps, done, last_seq, created_at, updated_at) VALUES
			('old', 'w', 'done', 'completed', 1, 1, 1, now() - interval '3 hours', now() - interval '3 hours'),
			('mid', 'w', 'parked', 'waiting', 1, 0, 1, now() - interval '2 hours', now() - interval '2 hours'),
			('new', 'w', 'done', 'failed', 1, 0, 1, now() - interval '1 hour', now() - interval '1 hour');
		INSERT INTO records (run_id, seq, epoch, type, body) SELECT id, 1, 1, 'run_started', '{}' FROM runs;
		INSERT INTO progress (run_id, body) SELECT id, '{}' FROM runs`); err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(ctx, pgstore.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := st.Version(ctx); err != nil || v != pgstore.SchemaVersion {
		t.Fatalf("schema %d (%v), want %d", v, err, pgstore.SchemaVersion)
	}
	list := func(o state.ListOptions) string {
		infos, err := st.List(o)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, in := range infos {
			ids = append(ids, in.ID)
		}
		return strings.Join(ids, " ")
	}
	if got := list(state.ListOptions{}); got != "new mid old" {
		t.Fatalf("list: %q, want the most recently active first: new mid old", got)
	}
	if got := list(state.ListOptions{Limit: 2}); got != "new mid" {
		t.Fatalf("list of 2: %q, want new mid", got)
	}
	if got := list(state.ListOptions{Status: []state.RunStatus{state.RunCompleted, state.RunWaiting}}); got != "mid old" {
		t.Fatalf("list of completed and waiting: %q, want mid old", got)
	}
	gone, err := st.Prune(state.PruneOptions{OlderThan: time.Now().Add(-150 * time.Minute)}, nil)
	if err != nil || len(gone) != 1 || gone[0].ID != "old" {
		t.Fatalf("prune: %+v, %v; want old removed", gone, err)
	}
	for table, col := range map[string]string{"runs": "id", "records": "run_id", "progress": "run_id"} {
		var kept, pruned int
		if err := pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE "+col+" <> 'old'), count(*) FILTER (WHERE "+col+" = 'old') FROM "+table).Scan(&kept, &pruned); err != nil {
			t.Fatal(err)
		}
		if kept != 2 || pruned != 0 {
			t.Errorf("%s: %d of the runs kept (want 2), %d of the pruned run (want 0)", table, kept, pruned)
		}
	}
}

// TestRuntime_CheckpointsOnPostgres: checkpoint records go to the
// database with the run, naming where their git commit is, so that
// another project (another machine) lists them; a restore of the files
// there says which repository has the commit, and a restore of the run's
// state works from anywhere.
func TestRuntime_CheckpointsOnPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	open := func(project string) *runtime.Runtime { return openRuntime(t, url, project) }
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if _, err := git.PlainInit(dir, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a, "notes.txt"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.New(testutil.ExamplePath(t, ""), manifest.Workflow{Name: "cp"}, manifest.Defaults{},
		manifest.Step{ID: "one", Plugin: "effect/effect.wasm", Idempotent: true},
		manifest.Step{ID: "two", Plugin: "effect/effect.wasm", Idempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	rt := open(a)
	res, err := rt.Run(ctx, m, runtime.RunOptions{})
	if err != nil || res.Status != state.RunCompleted {
		t.Fatalf("run: %v, %+v", err, res)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(a, state.DirName, state.CheckpointsDir)); slices.ContainsFunc(entries, func(e os.DirEntry) bool {
		return strings.HasPrefix(e.Name(), res.RunID)
	}) {
		t.Errorf("checkpoint records written in the project too: %v", entries)
	}

	rt = open(b)
	defer rt.Close(ctx)
	cps, err := runtime.NewView(b, mustOpen(t, url)).Checkpoints(res.RunID, 0)
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoints of the run from another project: %+v, %v", cps, err)
	}
	for _, cp := range cps {
		if cp.Commit == "" || cp.Repo != a || cp.Host == "" {
			t.Errorf("checkpoint %s: commit %q in %s:%s, want a commit of %s", cp.ID, cp.Commit, cp.Host, cp.Repo, a)
		}
	}
	_, err = rt.Restore(ctx, cps[0].ID, true, false)
	if err == nil || !strings.Contains(err.Error(), "the commit is in the repository at "+cps[0].Host+":"+a) {
		t.Fatalf("restore --files where the commit is not: %v", err)
	}
	got, err := rt.Restore(ctx, cps[0].ID, false, false)
	if err != nil || got.Step != "one" || !slices.Equal(got.Rerun, []string{"two"}) {
		t.Fatalf("restore of the run's state from another project: %+v, %v", got, err)
	}
	// Resumed here, the step run again is checkpointed in this project's
	// repository.
	if again, err := rt.Run(ctx, m, runtime.RunOptions{RunID: res.RunID}); err != nil || again.Ran != 1 || again.Status != state.RunCompleted {
		t.Fatalf("resume after the restore: %+v, %v", again, err)
	}
	cps, err = runtime.NewView(b, mustOpen(t, url)).Checkpoints(res.RunID, 0)
	if err != nil || len(cps) != 2 || cps[0].Repo != a || cps[1].Step != "two" || cps[1].Repo != b || cps[1].Commit == "" {
		t.Fatalf("checkpoints after the resume in another project: %+v, %v", cps, err)
	}
	// Pruned, the run's checkpoint records go with it.
	gone, err := rt.Prune(ctx, runtime.PruneOptions{OlderThan: time.Now().Add(time.Hour)})
	if err != nil || len(gone) != 1 {
		t.Fatalf("prune: %+v, %v", gone, err)
	}
	if left, err := runtime.NewView(b, mustOpen(t, url)).Checkpoints("", 0); err != nil || len(left) != 0 {
		t.Fatalf("checkpoints after the prune: %+v, %v", left, err)
	}
}

// openRuntime is the engine of project on its own store of the database
// at url (Close closes both).
func openRuntime(t *testing.T, url, project string) *runtime.Runtime {
	t.Helper()
	st, err := pgstore.Open(context.Background(), pgstore.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(context.Background(), runtime.Config{ProjectDir: project, Store: st, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func mustOpen(t *testing.T, url string) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(context.Background(), pgstore.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
