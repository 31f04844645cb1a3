package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// Config says where and how much to measure.
type Config struct {
	// Dir is the directory measured; every part works below it.
	Dir string
	// Binary is the 12fa executable, for W3 and the cold start.
	Binary string
	// SmallPlugin and GoPlugin are no-op plugins (paths); HTTPPlugin
	// (httploop.wat) and FetchPlugin (the fetch example) make HTTP calls.
	SmallPlugin, GoPlugin, HTTPPlugin, FetchPlugin string
	// Steps is W1's and W3's run length (1000); FlatSteps flatness's
	// (10000); W2Runs × W2Steps W2's shape (200 × 10); FloorOps the fsync
	// floor's sample (1000).
	Steps, FlatSteps, W2Runs, W2Steps, FloorOps int
	// Progress, when set, gets a line as each part starts.
	Progress io.Writer
	// PG, when set, is a PostgreSQL server (postgres://…, a user that may
	// create databases) to measure the PostgreSQL store on; EffectPlugin
	// (the effect example) is the step its takeover measure kills.
	PG, EffectPlugin string
	// DBOS is the DBOS harness (internal/bench/dbos, built), run on the
	// same server when set.
	DBOS string
	// Takeover is the heartbeat and lease of the takeover measure (the
	// defaults, 2s and 15s, when zero).
	Heartbeat, Lease time.Duration
}

// Defaults are the sizes the issue asks for.
func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Steps, 1000)
	def(&c.FlatSteps, 10000)
	def(&c.W2Runs, 200)
	def(&c.W2Steps, 10)
	def(&c.FloorOps, 1000)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Dist summarizes a sample of durations, in microseconds.
type Dist struct {
	N      int     `json:"n"`
	Median float64 `json:"median_us"`
	P10    float64 `json:"p10_us"`
	P90    float64 `json:"p90_us"`
}

func dist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 { return float64(s[int(q*float64(len(s)-1))].Nanoseconds()) / 1000 }
	return Dist{N: len(s), Median: at(0.5), P10: at(0.1), P90: at(0.9)}
}

// Report is what one bench run measured.
type Report struct {
	When  time.Time `json:"when"`
	Dir   string    `json:"dir"`
	Floor Dist      `json:"floor"`
	W1    []W1      `json:"w1"`
	W2    W2        `json:"w2"`
	W3    W3        `json:"w3"`
	Cold  Cold      `json:"cold_start"`
	Flat  Flat      `json:"flatness"`
	HTTP  HTTP      `json:"http"`
	Serve Serve     `json:"serve"`
	// PG is measured on the PostgreSQL server Config.PG names.
	PG     *PG      `json:"postgres,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// W1 is one long sequential run of no-op steps.
type W1 struct {
	Plugin  string  `json:"plugin"`
	Steps   int     `json:"steps"`
	PerStep Dist    `json:"per_step"`
	Ratio   float64 `json:"ratio_to_floor"`
}

// W2 is many runs at once in one process.
type W2 struct {
	Runs          int     `json:"runs"`
	Steps         int     `json:"steps_per_run"`
	StepsPerSec   float64 `json:"steps_per_sec"`
	NaivePerSec   float64 `json:"naive_steps_per_sec"`
	Ratio         float64 `json:"ratio_to_naive"`
	FloorPerSec   float64 `json:"floor_steps_per_sec"`
	Fsyncs        uint64  `json:"fsyncs"`
	NaiveFsyncs   uint64  `json:"naive_fsyncs"`
	Records       uint64  `json:"records"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	WallSeconds   float64 `json:"wall_s"`
	StepsFinished int     `json:"steps_finished"`
}

// W3 is a run killed half-way and resumed in a new process.
type W3 struct {
	Steps          int     `json:"steps"`
	KilledAfter    int     `json:"killed_after_steps"`
	ResumeTotalMS  float64 `json:"resume_total_ms"`
	RecoveryMS     float64 `json:"recovery_overhead_ms"`
	CompletedRerun int     `json:"completed_steps_rerun"`
	InFlightRerun  int     `json:"in_flight_rerun"`
	StepsAfterKill int     `json:"steps_run_after_kill"`
}

// Cold is `12fa run` of a one-step Go-plugin manifest.
type Cold struct {
	ColdCacheMS float64 `json:"cold_cache_ms"`
	WarmCache   Dist    `json:"warm_cache"`
}

// Flat compares the last and the first slices of a long run.
type Flat struct {
	Steps int     `json:"steps"`
	First Dist    `json:"first"`
	Last  Dist    `json:"last"`
	Ratio float64 `json:"ratio"`
}

// Run measures every part. A part that fails is reported in Errors and the
// others still run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	rep := &Report{When: time.Now().UTC(), Dir: cfg.Dir}
	part := func(name string, fn func() error) {
		fmt.Fprintf(cfg.Progress, "bench: %s…\n", name)
		if err := fn(); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", name, err))
		}
	}
	part("fsync floor", func() (err error) { rep.Floor, err = floor(cfg.Dir, cfg.FloorOps); return })
	for _, p := range []struct{ name, path string }{{"small (WAT)", cfg.SmallPlugin}, {"Go", cfg.GoPlugin}} {
		part("W1 "+p.name, func() error {
			d, err := sequential(ctx, cfg, "w1-"+filepath.Base(p.path), p.path, cfg.Steps)
			if err != nil {
				return err
			}
			w := W1{Plugin: p.name, Steps: cfg.Steps, PerStep: dist(d)}
			if rep.Floor.Median > 0 {
				w.Ratio = w.PerStep.Median / rep.Floor.Median
			}
			rep.W1 = append(rep.W1, w)
			return nil
		})
	}
	part("W2", func() (err error) { rep.W2, err = concurrent(ctx, cfg, rep.Floor); return })
	part("W3", func() (err error) { rep.W3, err = killResume(ctx, cfg); return })
	part("cold start", func() (err error) { rep.Cold, err = coldStart(ctx, cfg); return })
	if cfg.FetchPlugin != "" && cfg.HTTPPlugin != "" {
		part("HTTP", func() (err error) { rep.HTTP, err = httpBench(ctx, cfg); return })
	}
	if cfg.PG != "" {
		rep.PG = &PG{}
		pgParts(ctx, cfg, rep.PG, part)
	}
	part("flatness", func() error {
		d, err := sequential(ctx, cfg, "flat", cfg.SmallPlugin, cfg.FlatSteps)
		if err != nil {
			return err
		}
		k := min(1000, len(d)/2)
		rep.Flat = Flat{Steps: cfg.FlatSteps, First: dist(d[:k]), Last: dist(d[len(d)-k:])}
		if rep.Flat.First.Median > 0 {
			rep.Flat.Ratio = rep.Flat.Last.Median / rep.Flat.First.Median
		}
		return nil
	})
	part("serve pages", func() (err error) {
		rep.Serve, err = serveBench(ctx, cfg, filepath.Join(cfg.Dir, "flat"))
		return
	})
	return rep, nil
}

// floor appends 100 bytes and fsyncs, ops times, in dir.
func floor(dir string, ops int) (Dist, error) {
	f, err := os.OpenFile(filepath.Join(dir, "floor.bin"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return Dist{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 100)
	ds := make([]time.Duration, 0, ops)
	for range ops {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return Dist{}, err
		}
		if err := f.Sync(); err != nil {
			return Dist{}, err
		}
		ds = append(ds, time.Since(t))
	}
	return dist(ds), nil
}

// longManifest writes a manifest of n idempotent no-op steps that need no
// earlier outputs.
func longManifest(dir, name, plugin string, n int) (string, error) {
	var b strings.Builder
	// Git checkpoints off: the benchmark measures the durable step engine,
	// and its directory may be inside a git checkout (this one's).
	fmt.Fprintf(&b, "[workflow]\nname = %q\n\n[checkpoint]\ngit = false\n\n", name)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "[[step]]\nid = \"s%05d\"\nplugin = %q\nidempotent = true\nneeds = []\n\n", i, plugin)
	}
	p := filepath.Join(dir, name+".toml")
	return p, os.WriteFile(p, []byte(b.String()), 0o644)
}

// sequential runs one run of n steps in-process and returns the time from
// each step's completion to the next one's (the per-step cost on the
// critical path, journal included).
func sequential(ctx context.Context, cfg Config, name, plugin string, n int) ([]time.Duration, error) {
	return sequentialOn(ctx, cfg, name, plugin, n, nil)
}

// sequentialOn is sequential on a store (nil: the project's file store),
// which it closes.
func sequentialOn(ctx context.Context, cfg Config, name, plugin string, n int, st state.Store) ([]time.Duration, error) {
	project := filepath.Join(cfg.Dir, name)
	if err := os.RemoveAll(project); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(project, 0o755); err != nil {
		return nil, err
	}
	path, err := longManifest(project, name, plugin, n)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Load(path)
	if err != nil {
		return nil, err
	}
	var done []time.Time
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: project, CacheDir: filepath.Join(cfg.Dir, "cache"), Store: st,
		OnEvent: func(e runtime.Event) {
			if e.Type == runtime.EventStepCompleted || e.Type == runtime.EventRunStarted {
				done = append(done, time.Now())
			}
		}})
	if err != nil {
		return nil, err
	}
	_, err = rt.Run(ctx, m, runtime.RunOptions{New: true})
	if cerr := rt.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	ds := make([]time.Duration, 0, len(done))
	for i := 1; i < len(done); i++ {
		ds = append(ds, done[i].Sub(done[i-1]))
	}
	return ds, nil
}

// concurrent starts W2Runs runs of W2Steps steps at once in this process,
// with group commit, then again without it (every append its own fsync, the
// naive baseline).
func concurrent(ctx context.Context, cfg Config, fl Dist) (W2, error) {
	resetPeakRSS()
	w, err := concurrentOnce(ctx, cfg, "w2", false)
	if err != nil {
		return w, err
	}
	w.PeakRSSMiB = peakRSSMiB()
	naive, err := concurrentOnce(ctx, cfg, "w2-naive", true)
	if err != nil {
		return w, err
	}
	w.NaivePerSec, w.NaiveFsyncs = naive.StepsPerSec, naive.Fsyncs
	if naive.StepsPerSec > 0 {
		w.Ratio = w.StepsPerSec / naive.StepsPerSec
	}
	if fl.Median > 0 {
		w.FloorPerSec = 1e6 / fl.Median
	}
	return w, nil
}

func concurrentOnce(ctx context.Context, cfg Config, name string, naive bool) (W2, error) {
	project := filepath.Join(cfg.Dir, name)
	_ = os.RemoveAll(project)
	if err := os.MkdirAll(project, 0o755); err != nil {
		return W2{}, err
	}
	path, err := longManifest(project, name, cfg.SmallPlugin, cfg.W2Steps)
	if err != nil {
		return W2{}, err
	}
	m, err := manifest.Load(path)
	if err != nil {
		return W2{}, err
	}
	ms := make([]*manifest.Manifest, cfg.W2Runs)
	for i := range ms {
		ms[i] = m
	}
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: project, CacheDir: filepath.Join(cfg.Dir, "cache"), NoGroupCommit: naive})
	if err != nil {
		return W2{}, err
	}
	start := time.Now()
	results, errs := rt.RunAll(ctx, ms, runtime.RunOptions{New: true}, 0)
	wall := time.Since(start)
	stats := rt.StoreStats()
	if err := rt.Close(ctx); err != nil {
		return W2{}, err
	}
	w := W2{Runs: cfg.W2Runs, Steps: cfg.W2Steps, WallSeconds: wall.Seconds(), Fsyncs: stats.Syncs, Records: stats.Records}
	for i := range results {
		if errs[i] != nil {
			return w, errs[i]
		}
		w.StepsFinished += results[i].Ran
	}
	w.StepsPerSec = float64(w.StepsFinished) / wall.Seconds()
	return w, nil
}

// resetPeakRSS resets the kernel's peak-RSS mark of this process (Linux).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMiB reads the peak RSS of this process since the last reset
// (Linux; 0 elsewhere).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// killResume runs Steps steps in a child process, SIGKILLs it after about
// half, resumes in a new process, and reads the journal for what ran again.
func killResume(ctx context.Context, cfg Config) (W3, error) {
	project := filepath.Join(cfg.Dir, "w3")
	_ = os.RemoveAll(project)
	if err := os.MkdirAll(project, 0o755); err != nil {
		return W3{}, err
	}
	path, err := longManifest(project, "w3", cfg.SmallPlugin, cfg.Steps)
	if err != nil {
		return W3{}, err
	}
	cache := filepath.Join(cfg.Dir, "cache")
	cmd := exec.CommandContext(ctx, cfg.Binary, "-C", project, "--cache-dir", cache, "run", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return W3{}, err
	}
	if err := cmd.Start(); err != nil {
		return W3{}, err
	}
	half := fmt.Sprintf("[%d/%d]", cfg.Steps/2, cfg.Steps)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), half) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	go io.Copy(io.Discard, out)
	_ = cmd.Wait()
	before, err := journalSteps(project)
	if err != nil {
		return W3{}, err
	}
	w := W3{Steps: cfg.Steps, KilledAfter: before.completed}
	if before.completed >= cfg.Steps {
		return w, errors.New("the run finished before the kill")
	}
	start := time.Now()
	resume := exec.CommandContext(ctx, cfg.Binary, "-C", project, "--cache-dir", cache, "run", "-q", path)
	if b, err := resume.CombinedOutput(); err != nil {
		return w, fmt.Errorf("resume: %v: %s", err, b)
	}
	end := time.Now()
	after, err := journalSteps(project)
	if err != nil {
		return w, err
	}
	w.ResumeTotalMS = float64(end.Sub(start).Microseconds()) / 1000
	w.CompletedRerun = after.completedRerun
	w.InFlightRerun = after.inFlightRerun
	w.StepsAfterKill = after.startsAfter(before.records)
	if !after.firstStartAfter(before.records).IsZero() {
		exec := after.lastEnd.Sub(after.firstStartAfter(before.records))
		w.RecoveryMS = float64((end.Sub(start) - exec).Microseconds()) / 1000
	}
	return w, nil
}

type journalSummary struct {
	records        int
	completed      int
	completedRerun int
	inFlightRerun  int
	starts         []time.Time // time of each step_started, by record order
	startIdx       []int       // record index of each start
	lastEnd        time.Time
}

func (j journalSummary) startsAfter(rec int) int {
	n := 0
	for _, i := range j.startIdx {
		if i >= rec {
			n++
		}
	}
	return n
}

func (j journalSummary) firstStartAfter(rec int) time.Time {
	for k, i := range j.startIdx {
		if i >= rec {
			return j.starts[k]
		}
	}
	return time.Time{}
}

// journalSteps reads a project's journal: how many steps completed, and how
// many were started again after completing (must be 0) or after being in
// flight.
func journalSteps(project string) (journalSummary, error) {
	f, err := os.Open(filepath.Join(runtime.StoreDir(project), state.JournalFile))
	if err != nil {
		return journalSummary{}, err
	}
	defer f.Close()
	var j journalSummary
	completed := map[string]bool{}
	started := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r state.Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue // a torn tail
		}
		switch r.Type {
		case state.EventStepStarted:
			if completed[r.Step] {
				j.completedRerun++
			} else if started[r.Step] {
				j.inFlightRerun++
			}
			started[r.Step] = true
			j.starts = append(j.starts, r.Time)
			j.startIdx = append(j.startIdx, j.records)
		case state.EventStepCompleted:
			completed[r.Step] = true
			j.completed++
			j.lastEnd = r.Time
		}
		j.records++
	}
	return j, sc.Err()
}

// coldStart times `12fa run` of a one-step Go manifest with an empty compile
// cache, then with the cache warm (median of 5).
func coldStart(ctx context.Context, cfg Config) (Cold, error) {
	project := filepath.Join(cfg.Dir, "cold")
	_ = os.RemoveAll(project)
	if err := os.MkdirAll(project, 0o755); err != nil {
		return Cold{}, err
	}
	path, err := longManifest(project, "cold", cfg.GoPlugin, 1)
	if err != nil {
		return Cold{}, err
	}
	cache := filepath.Join(project, "cache")
	run := func() (time.Duration, error) {
		start := time.Now()
		b, err := exec.CommandContext(ctx, cfg.Binary, "-C", project, "--cache-dir", cache, "run", "-q", "--new", path).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%v: %s", err, b)
		}
		return time.Since(start), nil
	}
	var c Cold
	d, err := run()
	if err != nil {
		return c, err
	}
	c.ColdCacheMS = float64(d.Microseconds()) / 1000
	var warm []time.Duration
	for range 5 {
		d, err := run()
		if err != nil {
			return c, err
		}
		warm = append(warm, d)
	}
	c.WarmCache = dist(warm)
	return c, nil
}

// WriteTable prints the report as one table.
func (r *Report) WriteTable(w io.Writer) {
	ms := func(us float64) string { return fmt.Sprintf("%.3f ms", us/1000) }
	fmt.Fprintf(w, "12fa bench — %s, on %s\n\n", r.When.Format(time.RFC3339), r.Dir)
	fmt.Fprintf(w, "%-34s %-24s %s\n", "measure", "value", "goal")
	row := func(name, value, goal string) { fmt.Fprintf(w, "%-34s %-24s %s\n", name, value, goal) }
	row("floor: 100 B append + fsync", fmt.Sprintf("%s (p10 %s, p90 %s)", ms(r.Floor.Median), ms(r.Floor.P10), ms(r.Floor.P90)), "")
	for _, x := range r.W1 {
		goal := "≤ 1.5× floor"
		if x.Plugin == "Go" {
			goal = "≤ 3× floor"
		}
		row(fmt.Sprintf("W1 %s, %d steps, per step", x.Plugin, x.Steps),
			fmt.Sprintf("%s = %.2f× floor (p90 %s)", ms(x.PerStep.Median), x.Ratio, ms(x.PerStep.P90)), goal)
	}
	row(fmt.Sprintf("W2 %d runs × %d steps", r.W2.Runs, r.W2.Steps),
		fmt.Sprintf("%.0f steps/s = %.2f× naive (%.0f/s)", r.W2.StepsPerSec, r.W2.Ratio, r.W2.NaivePerSec), "≥ 3× naive")
	row("W2 fsyncs: group commit / naive", fmt.Sprintf("%d / %d for %d records", r.W2.Fsyncs, r.W2.NaiveFsyncs, r.W2.Records), "")
	row("W2 peak RSS", fmt.Sprintf("%.0f MiB", r.W2.PeakRSSMiB), "")
	row("1 / floor (fsync-bound ceiling)", fmt.Sprintf("%.0f steps/s", r.W2.FloorPerSec), "")
	row(fmt.Sprintf("W3 kill at %d/%d, resume total", r.W3.KilledAfter, r.W3.Steps), fmt.Sprintf("%.1f ms", r.W3.ResumeTotalMS), "")
	row("W3 recovery overhead", fmt.Sprintf("%.1f ms", r.W3.RecoveryMS), "≤ 50 ms")
	row("W3 completed steps run again", fmt.Sprintf("%d (in flight: %d)", r.W3.CompletedRerun, r.W3.InFlightRerun), "0")
	row("cold start, empty cache", fmt.Sprintf("%.1f ms", r.Cold.ColdCacheMS), "")
	row("cold start, warm cache", fmt.Sprintf("%s (p90 %s)", ms(r.Cold.WarmCache.Median), ms(r.Cold.WarmCache.P90)), "≤ 100 ms")
	row(fmt.Sprintf("flatness, %d steps: last/first", r.Flat.Steps),
		fmt.Sprintf("%.2f× (%s vs %s)", r.Flat.Ratio, ms(r.Flat.Last.Median), ms(r.Flat.First.Median)), "≤ 1.1×")
	if sv := r.Serve; sv.Runs > 0 {
		row(fmt.Sprintf("serve: runs page of %d runs", sv.Runs), fmt.Sprintf("%s (p90 %s)", ms(sv.RunsPage.Median), ms(sv.RunsPage.P90)), "")
		row("serve: their last page", fmt.Sprintf("%s (p90 %s)", ms(sv.LastPage.Median), ms(sv.LastPage.P90)), "")
		row(fmt.Sprintf("serve: page of a %d-step run", sv.Steps), fmt.Sprintf("%s (p90 %s), %d KiB", ms(sv.RunPage.Median), ms(sv.RunPage.P90), sv.RunPageKiB), "")
	}
	if h := r.HTTP; h.Calls > 0 {
		row(fmt.Sprintf("HTTP call in a step (%d per step)", h.Calls),
			fmt.Sprintf("%s = %.2f× a plain Go client (%s)", ms(h.Step.Median), h.Ratio, ms(h.Plain.Median)), "≤ 1.3× plain")
		row(fmt.Sprintf("%d calls replayed / live", h.Calls),
			fmt.Sprintf("%.1f ms / %.1f ms, %d sent on replay", h.ReplayMS, h.LiveMS, h.ReplayRequests), "")
	}
	if r.PG != nil {
		r.PG.rows(row, ms)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
