package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/serve"
	"github.com/12fa/12fa/state"
)

// Serve is how long `12fa serve` takes to answer its pages, as a browser
// asks for them (a view of the file store opened per request, as the CLI
// does): the runs page of a store of 1,000 runs, its last page, and the
// page of a run of FlatSteps steps.
type Serve struct {
	Runs       int  `json:"runs"`
	RunsPage   Dist `json:"runs_page"`
	LastPage   Dist `json:"last_runs_page"`
	Steps      int  `json:"steps"`
	RunPage    Dist `json:"long_run_page"`
	RunPageKiB int  `json:"long_run_page_kib"`
}

// serveRuns is the size of the store whose runs page is measured.
const serveRuns = 1000

// serveBench measures the dashboard's pages: on a store of serveRuns
// one-step runs, and on the project of flatness's long run (longRun).
func serveBench(ctx context.Context, cfg Config, longRun string) (Serve, error) {
	s := Serve{Runs: serveRuns, Steps: cfg.FlatSteps}
	many := filepath.Join(cfg.Dir, "serve-runs")
	_ = os.RemoveAll(many)
	if err := os.MkdirAll(many, 0o755); err != nil {
		return s, err
	}
	path, err := longManifest(many, "serve-runs", cfg.SmallPlugin, 1)
	if err != nil {
		return s, err
	}
	m, err := manifest.Load(path)
	if err != nil {
		return s, err
	}
	ms := make([]*manifest.Manifest, serveRuns)
	for i := range ms {
		ms[i] = m
	}
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: many, CacheDir: filepath.Join(cfg.Dir, "cache")})
	if err != nil {
		return s, err
	}
	_, errs := rt.RunAll(ctx, ms, runtime.RunOptions{New: true}, 0)
	if err := rt.Close(ctx); err != nil {
		return s, err
	}
	for _, err := range errs {
		if err != nil {
			return s, err
		}
	}
	get := func(dir, path string, n int) (Dist, int, error) {
		srv, err := serve.New(serve.Config{ProjectDir: dir, Loopback: true, Open: func() (*runtime.View, func(), error) {
			v, err := runtime.OpenView(dir, nil)
			if err != nil {
				return nil, nil, err
			}
			return v, func() { _ = v.Close() }, nil
		}})
		if err != nil {
			return Dist{}, 0, err
		}
		hs := httptest.NewServer(srv)
		defer hs.Close()
		ds := make([]time.Duration, 0, n)
		size := 0
		for range n {
			start := time.Now()
			resp, err := http.Get(hs.URL + path)
			if err != nil {
				return Dist{}, 0, err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return Dist{}, 0, err
			}
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "</html>") {
				return Dist{}, 0, fmt.Errorf("GET %s: %s", path, resp.Status)
			}
			ds = append(ds, time.Since(start))
			size = len(b)
		}
		return dist(ds), size, nil
	}
	if s.RunsPage, _, err = get(many, "/", 20); err != nil {
		return s, err
	}
	if s.LastPage, _, err = get(many, fmt.Sprintf("/?page=%d", serveRuns/50), 20); err != nil {
		return s, err
	}
	v, err := runtime.OpenView(longRun, nil)
	if err != nil {
		return s, err
	}
	runs, err := v.Runs(state.ListOptions{Limit: 1})
	v.Close()
	if err != nil || len(runs) == 0 {
		return s, fmt.Errorf("the long run: %v", err)
	}
	var size int
	if s.RunPage, size, err = get(longRun, "/runs/"+runs[0].ID, 10); err != nil {
		return s, err
	}
	s.RunPageKiB = size / 1024
	return s, nil
}
