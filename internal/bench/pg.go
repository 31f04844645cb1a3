package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/pgstore"
	"github.com/12fa/12fa/worker"
)

// PG is what the bench measures on PostgreSQL.
type PG struct {
	Server string `json:"server"`
	// Floor is one single-row INSERT committed (fsync on), one at a time.
	Floor Dist `json:"floor"`
	// W1 is one 1000-step run of the small plugin in this process, on the
	// PostgreSQL store.
	W1      Dist    `json:"w1_per_step"`
	W1Ratio float64 `json:"w1_ratio_to_floor"`
	// W2 is W2Runs × W2Steps submitted, then run by 1 and by 2 `12fa
	// worker` processes.
	W2 []PGW2 `json:"w2"`
	// Takeover is a worker SIGKILLed in a step: the time until another
	// worker holds its run.
	Takeover Takeover `json:"takeover"`
	// DBOS is DBOS Transact Go on the same server in the same sitting
	// (internal/bench/dbos), when Config.DBOS names its harness.
	DBOS *DBOS `json:"dbos,omitempty"`
}

// DBOS is what internal/bench/dbos prints.
type DBOS struct {
	Version       string  `json:"version"`
	W1Steps       int     `json:"w1_steps"`
	W1MedianUS    float64 `json:"w1_per_step_median_us"`
	W1MeanUS      float64 `json:"w1_per_step_mean_us"`
	W2Runs        int     `json:"w2_runs"`
	W2Steps       int     `json:"w2_steps"`
	W2Seconds     float64 `json:"w2_wall_s"`
	W2StepsPerSec float64 `json:"w2_steps_per_sec"`
}

// PGW2 is W2 on workers.
type PGW2 struct {
	Workers     int     `json:"workers"`
	Concurrency int     `json:"concurrency_each"`
	Runs        int     `json:"runs"`
	Steps       int     `json:"steps"`
	Seconds     float64 `json:"wall_s"`
	StepsPerSec float64 `json:"steps_per_sec"`
}

// Takeover is a takeover after SIGKILL.
type Takeover struct {
	Heartbeat string  `json:"heartbeat"`
	Lease     string  `json:"lease"`
	Seconds   float64 `json:"seconds"`
}

func pgParts(ctx context.Context, cfg Config, rep *PG, part func(string, func() error)) {
	u, err := url.Parse(cfg.PG)
	if err == nil {
		rep.Server = u.Host
	}
	part("PostgreSQL floor", func() (err error) { rep.Floor, err = pgFloor(ctx, cfg); return })
	part("PostgreSQL W1", func() error {
		db, err := scratchDB(ctx, cfg.PG)
		if err != nil {
			return err
		}
		st, err := pgstore.Open(ctx, pgstore.Config{URL: db}, nil)
		if err != nil {
			return err
		}
		d, err := sequentialOn(ctx, cfg, "pg-w1", cfg.SmallPlugin, cfg.Steps, st)
		if err != nil {
			return err
		}
		rep.W1 = dist(d)
		if rep.Floor.Median > 0 {
			rep.W1Ratio = rep.W1.Median / rep.Floor.Median
		}
		return nil
	})
	for _, n := range []int{1, 2} {
		part(fmt.Sprintf("PostgreSQL W2, %d worker(s)", n), func() error {
			w, err := pgW2(ctx, cfg, n)
			rep.W2 = append(rep.W2, w)
			return err
		})
	}
	if cfg.DBOS != "" {
		part("DBOS Transact Go", func() error {
			db, err := scratchDB(ctx, cfg.PG)
			if err != nil {
				return err
			}
			out, err := exec.CommandContext(ctx, cfg.DBOS, "-url", db, "-steps", fmt.Sprint(cfg.Steps),
				"-runs", fmt.Sprint(cfg.W2Runs), "-run-steps", fmt.Sprint(cfg.W2Steps)).Output()
			if err != nil {
				return fmt.Errorf("%s: %w", cfg.DBOS, err)
			}
			rep.DBOS = &DBOS{}
			return json.Unmarshal(out, rep.DBOS)
		})
	}
	if cfg.EffectPlugin != "" {
		part("PostgreSQL takeover", func() (err error) { rep.Takeover, err = takeover(ctx, cfg); return })
	}
}

// scratchDB creates a database of its own on the server at base and
// returns its URL.
func scratchDB(ctx context.Context, base string) (string, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "twelvefa_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func pgFloor(ctx context.Context, cfg Config) (Dist, error) {
	conn, err := pgx.Connect(ctx, cfg.PG)
	if err != nil {
		return Dist{}, err
	}
	defer conn.Close(ctx)
	// A row of a logged table (not a temporary one), committed with
	// fsync, as the store's records are.
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS twelvefa_bench_floor (id int, body text)"); err != nil {
		return Dist{}, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "DROP TABLE twelvefa_bench_floor") //nolint:errcheck
	ds := make([]time.Duration, 0, cfg.FloorOps)
	for i := range cfg.FloorOps {
		t := time.Now()
		if _, err := conn.Exec(ctx, "INSERT INTO twelvefa_bench_floor VALUES ($1, $2)", i, fmt.Sprintf("%0100d", i)); err != nil {
			return Dist{}, err
		}
		ds = append(ds, time.Since(t))
	}
	return dist(ds), nil
}

// pgW2 submits the W2 runs and times n worker processes running them,
// from the first step started to the last run completed (by the
// database's clock; the workers' start is not counted).
func pgW2(ctx context.Context, cfg Config, n int) (PGW2, error) {
	conc := 100
	w := PGW2{Workers: n, Concurrency: conc, Runs: cfg.W2Runs, Steps: cfg.W2Runs * cfg.W2Steps}
	db, err := scratchDB(ctx, cfg.PG)
	if err != nil {
		return w, err
	}
	project := filepath.Join(cfg.Dir, fmt.Sprintf("pg-w2-%d", n))
	if err := os.MkdirAll(project, 0o755); err != nil {
		return w, err
	}
	// The manifest names its plugin relative to itself, as submit wants.
	if err := copyFile(cfg.SmallPlugin, filepath.Join(project, "step.wasm")); err != nil {
		return w, err
	}
	path, err := longManifest(project, "w2", "step.wasm", cfg.W2Steps)
	if err != nil {
		return w, err
	}
	if err := submit(ctx, db, path, cfg.W2Runs); err != nil {
		return w, err
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	for i := range n {
		dir := filepath.Join(project, fmt.Sprintf("worker-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return w, err
		}
		p := exec.CommandContext(ctx, cfg.Binary, "-C", dir, "--cache-dir", filepath.Join(cfg.Dir, "cache"), "--store", db,
			"--log-level", "warn", "worker", "--concurrency", fmt.Sprint(conc))
		p.Stderr = os.Stderr
		if err := p.Start(); err != nil {
			return w, err
		}
		procs = append(procs, p)
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return w, err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var done int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM runs WHERE status = 'completed'").Scan(&done); err != nil {
			return w, err
		}
		if done == cfg.W2Runs {
			break
		}
		if time.Now().After(deadline) {
			return w, fmt.Errorf("%d of %d runs completed after 10 minutes", done, cfg.W2Runs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var secs float64
	if err := conn.QueryRow(ctx, `SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'run_completed') - min(at) FILTER (WHERE type = 'step_started'))
		FROM records`).Scan(&secs); err != nil {
		return w, err
	}
	w.Seconds = secs
	if secs > 0 {
		w.StepsPerSec = float64(w.Steps) / secs
	}
	return w, nil
}

func submit(ctx context.Context, db, path string, count int) error {
	m, err := manifest.Load(path)
	if err != nil {
		return err
	}
	st, err := pgstore.Open(ctx, pgstore.Config{URL: db}, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = worker.Submit(ctx, st, m, count, false)
	return err
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// takeover SIGKILLs a worker in the middle of a one-step run (the step
// sleeps 60s) and times until a second worker holds the run.
func takeover(ctx context.Context, cfg Config) (Takeover, error) {
	hb, lease := cfg.Heartbeat, cfg.Lease
	if hb == 0 {
		hb = pgstore.DefaultHeartbeat
	}
	if lease == 0 {
		lease = pgstore.DefaultLease
	}
	t := Takeover{Heartbeat: hb.String(), Lease: lease.String()}
	db, err := scratchDB(ctx, cfg.PG)
	if err != nil {
		return t, err
	}
	project := filepath.Join(cfg.Dir, "pg-takeover")
	if err := os.MkdirAll(project, 0o755); err != nil {
		return t, err
	}
	if err := copyFile(cfg.EffectPlugin, filepath.Join(project, "effect.wasm")); err != nil {
		return t, err
	}
	path := filepath.Join(project, "takeover.toml")
	if err := os.WriteFile(path, []byte("[workflow]\nname = \"takeover\"\n\n[checkpoint]\ngit = false\n\n[defaults]\ntimeout = \"2m\"\n\n"+
		"[[step]]\nid = \"sleep\"\nplugin = \"effect.wasm\"\ninput = { sleep_ms = 60000 }\nidempotent = true\n"), 0o644); err != nil {
		return t, err
	}
	if err := submit(ctx, db, path, 1); err != nil {
		return t, err
	}
	start := func(name string) (*exec.Cmd, error) {
		dir := filepath.Join(project, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		p := exec.CommandContext(ctx, cfg.Binary, "-C", dir, "--cache-dir", filepath.Join(cfg.Dir, "cache"), "--store", db, "--log-level", "warn", "worker")
		p.Env = append(os.Environ(), "TWELVEFA_HEARTBEAT="+hb.String(), "TWELVEFA_LEASE="+lease.String())
		return p, p.Start()
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return t, err
	}
	defer conn.Close(ctx)
	wait := func(sql string, d time.Duration) error {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			var n int
			if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
		}
		return fmt.Errorf("after %s: none of %s", d, sql)
	}
	a, err := start("a")
	if err != nil {
		return t, err
	}
	if err := wait("SELECT count(*) FROM records WHERE type = 'step_started'", time.Minute); err != nil {
		_ = a.Process.Kill()
		_ = a.Wait()
		return t, err
	}
	b, err := start("b")
	if err != nil {
		return t, err
	}
	defer func() {
		_ = b.Process.Kill()
		_ = b.Wait()
	}()
	// b is up (its first heartbeat) before a dies.
	if err := wait("SELECT count(*) FROM workers WHERE pid = "+fmt.Sprint(b.Process.Pid), time.Minute); err != nil {
		return t, err
	}
	killed := time.Now()
	_ = a.Process.Kill()
	_ = a.Wait()
	if err := wait(fmt.Sprintf("SELECT count(*) FROM runs WHERE state = 'leased' AND owner LIKE '%%/%d/%%'", b.Process.Pid), lease*4); err != nil {
		return t, err
	}
	t.Seconds = time.Since(killed).Seconds()
	return t, nil
}

func (p *PG) rows(row func(name, value, goal string), ms func(float64) string) {
	row("PostgreSQL "+p.Server+": 1-row commit", fmt.Sprintf("%s (p10 %s, p90 %s)", ms(p.Floor.Median), ms(p.Floor.P10), ms(p.Floor.P90)), "")
	row("PG W1 small, per step", fmt.Sprintf("%s = %.2f× PG floor (p90 %s)", ms(p.W1.Median), p.W1Ratio, ms(p.W1.P90)), "≤ 1.5× PG floor")
	if d := p.DBOS; d != nil {
		row(fmt.Sprintf("DBOS %s W1, %d steps, per step", d.Version, d.W1Steps),
			fmt.Sprintf("%s (mean %s) = %.2f× PG floor", ms(d.W1MedianUS), ms(d.W1MeanUS), d.W1MedianUS/p.Floor.Median), "")
		row(fmt.Sprintf("DBOS %s W2 %d runs at once", d.Version, d.W2Runs),
			fmt.Sprintf("%.0f steps/s (%d steps in %.2fs)", d.W2StepsPerSec, d.W2Steps, d.W2Seconds), "")
	}
	for _, w := range p.W2 {
		vs := ""
		if p.DBOS != nil && p.DBOS.W2StepsPerSec > 0 {
			vs = fmt.Sprintf(" = %.2f× DBOS", w.StepsPerSec/p.DBOS.W2StepsPerSec)
		}
		row(fmt.Sprintf("PG W2 %d runs, %d worker(s) × %d", w.Runs, w.Workers, w.Concurrency),
			fmt.Sprintf("%.0f steps/s%s (%d steps in %.2fs)", w.StepsPerSec, vs, w.Steps, w.Seconds), "≥ 3× DBOS")
	}
	if p.Takeover.Seconds > 0 {
		row(fmt.Sprintf("PG takeover after SIGKILL (%s/%s)", p.Takeover.Heartbeat, p.Takeover.Lease),
			fmt.Sprintf("%.1f s", p.Takeover.Seconds), "≈ lease + reaper")
	}
}
