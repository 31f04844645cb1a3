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
	"sync/atomic"
	"time"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
)

// HTTP compares a step's HTTP calls with a plain Go client's, to a
// loopback server: per call, in a step that makes 100 of them with as
// little guest work as possible (httploop.wat; the step's own start and
// end amortized), and 100 calls of the fetch example replayed from the
// journal when the step runs again after a question, against the same
// calls made live.
type HTTP struct {
	Calls int `json:"calls_per_step"`
	// Step is the per-call time in a step; Plain a plain client's.
	Step  Dist    `json:"step_per_call"`
	Plain Dist    `json:"plain_per_call"`
	Ratio float64 `json:"ratio_to_plain"`
	// LiveMS and ReplayMS are the attempts' durations: the one that made
	// the calls and the one that got them back from the journal.
	LiveMS   float64 `json:"live_attempt_ms"`
	ReplayMS float64 `json:"replay_attempt_ms"`
	// ReplayRequests counts what the server got during the replay (0).
	ReplayRequests int64 `json:"replay_requests"`
}

// httpRounds is how many steps (and plain batches) are measured;
// httpCalls is how many calls each makes (httploop.wat's count).
const (
	httpRounds = 15
	httpCalls  = 100
)

func httpBench(ctx context.Context, cfg Config) (HTTP, error) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	n := httpCalls
	res := HTTP{Calls: n}

	reqs := make([]string, n)
	for i := range reqs {
		reqs[i] = fmt.Sprintf("{ url = %q }", srv.URL+"/x")
	}
	project := filepath.Join(cfg.Dir, "http")
	if err := os.MkdirAll(project, 0o755); err != nil {
		return res, err
	}
	write := func(name, plugin, input, mode string) (*manifest.Manifest, error) {
		m := fmt.Sprintf("[workflow]\nname = %q\n[[step]]\nid = \"fetch\"\nplugin = %q\nidempotent = true\ninput_mode = %q\ninput = %s\n[step.allow]\nhosts = [%q]\nprivate = [\"127.0.0.1\"]\nhttp = { max_requests = %d }\n",
			name, plugin, mode, input, srv.URL, n+1)
		path := filepath.Join(project, name+".toml")
		if err := os.WriteFile(path, []byte(m), 0o644); err != nil {
			return nil, err
		}
		return manifest.Load(path)
	}
	var attempt []time.Duration
	var waiting string
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: project, CacheDir: filepath.Join(cfg.Dir, "cache"),
		OnEvent: func(e runtime.Event) {
			switch e.Type {
			case runtime.EventStepCompleted:
				attempt = append(attempt, e.Duration)
			case runtime.EventStepWaiting:
				attempt = append(attempt, e.Duration)
				if len(e.Questions) > 0 {
					waiting = e.Questions[0].ID
				}
			}
		}})
	if err != nil {
		return res, err
	}
	defer rt.Close(ctx)
	// httploop sends its raw input, a request document, n times.
	m, err := write("calls", cfg.HTTPPlugin, fmt.Sprintf("%q", fmt.Sprintf(`{"url":%q}`, srv.URL+"/x")), "raw")
	if err != nil {
		return res, err
	}
	// A plain client, keeping its connection as egress does; its batches
	// alternate with the steps, so that both see the same machine.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	var plain []time.Duration
	for round := range httpRounds + 1 { // the first warms the compile cache and the instance
		if _, err := rt.Run(ctx, m, runtime.RunOptions{New: true}); err != nil {
			return res, err
		}
		start := time.Now()
		for range n {
			resp, err := client.Get(srv.URL + "/x")
			if err != nil {
				return res, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if round > 0 {
			plain = append(plain, time.Since(start)/time.Duration(n))
		}
	}
	res.Plain = dist(plain)
	if len(attempt) != httpRounds+1 {
		return res, fmt.Errorf("%d attempts measured", len(attempt))
	}
	var per []time.Duration
	for _, d := range attempt[1:] {
		per = append(per, d/time.Duration(n))
	}
	res.Step = dist(per)
	if res.Plain.Median > 0 {
		res.Ratio = res.Step.Median / res.Plain.Median
	}

	// Live, then (after the answer) replayed.
	attempt = nil
	m, err = write("replay", cfg.FetchPlugin, `{ ask = "Go on?", requests = [`+strings.Join(reqs, ", ")+"] }", "envelope")
	if err != nil {
		return res, err
	}
	run, err := rt.Run(ctx, m, runtime.RunOptions{New: true})
	if err == nil || waiting == "" {
		return res, fmt.Errorf("the replay step did not wait: %v", err)
	}
	if _, err := runtime.Respond(project, waiting, "yes"); err != nil {
		return res, err
	}
	before := hits.Load()
	if _, err := rt.Resume(ctx, run.RunID, runtime.RunOptions{}); err != nil {
		return res, err
	}
	res.ReplayRequests = hits.Load() - before
	if len(attempt) != 2 {
		return res, fmt.Errorf("%d replay attempts measured", len(attempt))
	}
	res.LiveMS, res.ReplayMS = ms(attempt[0]), ms(attempt[1])
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
