package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
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

// ScaleConfig says which stores `12fa bench --scale` builds.
type ScaleConfig struct {
	// Dir is where the stores are built; Binary the 12fa executable that
	// is measured on them; SmallPlugin the no-op plugin of every step.
	Dir, Binary, SmallPlugin string
	// Stores are the shapes built, runs × steps each (1,000 × 1,000 and
	// 100,000 × 10 when nil).
	Stores []StoreShape
	// RunSteps is the length of the run measured on each (1,000).
	RunSteps int
	// Progress, when set, gets a line as each part starts.
	Progress io.Writer
}

// StoreShape is a store of Runs finished runs of Steps steps each.
type StoreShape struct {
	Runs, Steps int
}

// ScaleReport holds the measures on an empty store and on each store built.
type ScaleReport struct {
	When   time.Time    `json:"when"`
	Dir    string       `json:"dir"`
	Stores []ScaleStore `json:"stores"`
}

// ScaleStore is what was measured on one store, each measure a run of the
// binary in a process of its own.
type ScaleStore struct {
	Runs        int     `json:"runs"`
	StepsPerRun int     `json:"steps_per_run"`
	BuildS      float64 `json:"build_s"`
	DiskMiB     float64 `json:"disk_mib"`
	JournalMiB  float64 `json:"journal_mib"`
	// Measures by name: "run" (`12fa run` of a new RunSteps-step run),
	// "status", "status <run>" (the oldest run) and "status --json --all"
	// (every run, streamed).
	Measures map[string]Proc `json:"measures"`
}

// Proc is one process's wall time and peak RSS.
type Proc struct {
	MS     float64 `json:"ms"`
	RSSMiB float64 `json:"peak_rss_mib"`
	Bytes  int     `json:"stdout_bytes,omitempty"`
}

// Scale builds an empty store and cfg.Stores, and measures on each the
// start of a run, status, status of one run and status --json.
func Scale(ctx context.Context, cfg ScaleConfig) (*ScaleReport, error) {
	if cfg.Stores == nil {
		cfg.Stores = []StoreShape{{1000, 1000}, {100000, 10}}
	}
	if cfg.RunSteps == 0 {
		cfg.RunSteps = 1000
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	rep := &ScaleReport{When: time.Now().UTC(), Dir: cfg.Dir}
	cache := filepath.Join(cfg.Dir, "cache")
	type store struct {
		project, manifest, oldest string
	}
	var stores []store
	for _, sh := range append([]StoreShape{{0, 0}}, cfg.Stores...) {
		project := filepath.Join(cfg.Dir, fmt.Sprintf("store-%dx%d", sh.Runs, sh.Steps))
		if err := os.RemoveAll(project); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(project, 0o755); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Progress, "bench --scale: building %d runs × %d steps…\n", sh.Runs, sh.Steps)
		start := time.Now()
		oldest, err := buildStore(ctx, cfg, project, sh)
		if err != nil {
			return nil, fmt.Errorf("build %d × %d: %w", sh.Runs, sh.Steps, err)
		}
		path, err := longManifest(project, "measured", cfg.SmallPlugin, cfg.RunSteps)
		if err != nil {
			return nil, err
		}
		rep.Stores = append(rep.Stores, ScaleStore{Runs: sh.Runs, StepsPerRun: sh.Steps, BuildS: time.Since(start).Seconds(),
			Measures: map[string]Proc{}})
		stores = append(stores, store{project, path, oldest})
	}
	// What building wrote reaches the disk before anything is measured,
	// so that no measure pays for another store's writeback; then the
	// stores are measured in turn, five rounds, and each measure is the
	// median of its five.
	syscall.Sync()
	fmt.Fprintf(cfg.Progress, "bench --scale: measuring…\n")
	samples := make([]map[string][]Proc, len(stores))
	for round := range 6 {
		for i, st := range stores {
			bin := func(args ...string) (Proc, error) {
				return measure(ctx, cfg.Binary, append([]string{"-C", st.project, "--cache-dir", cache}, args...)...)
			}
			if samples[i] == nil {
				samples[i] = map[string][]Proc{}
			}
			for _, m := range []struct {
				name string
				args []string
			}{{"run", []string{"run", "-q", "--new", st.manifest}}, {"status", []string{"status"}}, {"status <run>", []string{"status", st.oldest}},
				{"status --json --all", []string{"status", "--json", "--all"}}} {
				if m.name == "status <run>" && st.oldest == "" {
					continue
				}
				p, err := bin(m.args...)
				if err != nil {
					return nil, err
				}
				if round > 0 { // the first round warms the compile and page caches
					samples[i][m.name] = append(samples[i][m.name], p)
				}
			}
		}
	}
	for i, st := range stores {
		for name, ps := range samples[i] {
			slices.SortFunc(ps, func(a, b Proc) int { return cmp.Compare(a.MS, b.MS) })
			rep.Stores[i].Measures[name] = ps[len(ps)/2]
		}
		rep.Stores[i].DiskMiB = float64(duBytes(filepath.Join(st.project, state.DirName))) / (1 << 20)
		if fi, err := os.Stat(filepath.Join(st.project, state.DirName, state.JournalFile)); err == nil {
			rep.Stores[i].JournalMiB = float64(fi.Size()) / (1 << 20)
		}
	}
	return rep, nil
}

// buildStore fills project with sh.Runs finished runs of sh.Steps no-op
// steps, through the runtime as `12fa run -p` would (batches of runs at
// once, each process a batch), and returns the oldest run's id.
func buildStore(ctx context.Context, cfg ScaleConfig, project string, sh StoreShape) (string, error) {
	if sh.Runs == 0 {
		return "", runtime.Init(project)
	}
	path, err := longManifest(project, "history", cfg.SmallPlugin, sh.Steps)
	if err != nil {
		return "", err
	}
	m, err := manifest.Load(path)
	if err != nil {
		return "", err
	}
	const batch = 1000
	oldest := ""
	for done := 0; done < sh.Runs; {
		n := min(batch, sh.Runs-done)
		rt, err := runtime.New(ctx, runtime.Config{ProjectDir: project, CacheDir: filepath.Join(cfg.Dir, "cache")})
		if err != nil {
			return "", err
		}
		ms := make([]*manifest.Manifest, n)
		for i := range ms {
			ms[i] = m
		}
		res, errs := rt.RunAll(ctx, ms, runtime.RunOptions{New: true}, 20)
		if cerr := rt.Close(ctx); cerr != nil {
			return "", cerr
		}
		for _, err := range errs {
			if err != nil {
				return "", err
			}
		}
		if oldest == "" {
			oldest = res[0].RunID
		}
		done += n
		if done%(10*batch) == 0 || done == sh.Runs {
			fmt.Fprintf(cfg.Progress, "bench --scale:   %d runs\n", done)
		}
	}
	return oldest, nil
}

// measure runs the binary and returns its wall time and peak RSS.
func measure(ctx context.Context, bin string, args ...string) (Proc, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	rss, err := os.CreateTemp("", "12fa-rss-*")
	if err != nil {
		return Proc{}, err
	}
	rss.Close()
	defer os.Remove(rss.Name())
	cmd.Env = append(os.Environ(), "TWELVEFA_PEAK_RSS_FILE="+rss.Name())
	var out countWriter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	err = cmd.Run()
	p := Proc{MS: float64(time.Since(start).Microseconds()) / 1000, Bytes: out.n}
	if err != nil {
		return p, fmt.Errorf("12fa %v: %v: %s", args, err, stderr.Bytes())
	}
	// Not the rusage of the child: on Linux it counts the memory of this
	// process, which the child had until its exec.
	if b, err := os.ReadFile(rss.Name()); err == nil {
		kb, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		p.RSSMiB = kb / 1024
	}
	return p, nil
}

type countWriter struct{ n int }

func (w *countWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

func duBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// WriteTable prints the report, each store's measures beside the empty
// store's.
func (r *ScaleReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "12fa bench --scale — %s, on %s\n\n", r.When.Format(time.RFC3339), r.Dir)
	if len(r.Stores) == 0 {
		return
	}
	empty := r.Stores[0]
	fmt.Fprintf(w, "%-24s", "measure")
	for _, s := range r.Stores {
		fmt.Fprintf(w, " %-28s", fmt.Sprintf("%d runs × %d steps", s.Runs, s.StepsPerRun))
	}
	fmt.Fprintf(w, " goal\n")
	goals := map[string]string{"run": "≤ 1.1× empty, RSS ±20 %", "status": "≤ 100 ms, ≤ 64 MiB",
		"status <run>": "≤ 100 ms, ≤ 64 MiB", "status --json --all": "streams (RSS flat)"}
	for _, name := range []string{"run", "status", "status <run>", "status --json --all"} {
		fmt.Fprintf(w, "%-24s", name)
		for _, s := range r.Stores {
			p, ok := s.Measures[name]
			if !ok {
				fmt.Fprintf(w, " %-28s", "-")
				continue
			}
			cell := fmt.Sprintf("%.0f ms, %.0f MiB", p.MS, p.RSSMiB)
			if e, ok := empty.Measures[name]; ok && s.Runs > 0 && name == "run" && e.MS > 0 {
				cell += fmt.Sprintf(" (%.2f×)", p.MS/e.MS)
			}
			fmt.Fprintf(w, " %-28s", cell)
		}
		fmt.Fprintf(w, " %s\n", goals[name])
	}
	fmt.Fprintf(w, "%-24s", "disk (.12fa, journal)")
	for _, s := range r.Stores {
		fmt.Fprintf(w, " %-28s", fmt.Sprintf("%.1f MiB, %.2f MiB", s.DiskMiB, s.JournalMiB))
	}
	fmt.Fprintf(w, "\n%-24s", "built in")
	for _, s := range r.Stores {
		fmt.Fprintf(w, " %-28s", fmt.Sprintf("%.0f s", s.BuildS))
	}
	fmt.Fprintln(w)
}
