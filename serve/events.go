package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"time"

	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/progress"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// logLine is a progress entry as a page shows it: guest text made safe
// here, set as text (never as markup) by the page's script.
type logLine struct {
	Time     string `json:"time"`
	Phase    string `json:"phase"`
	Step     string `json:"step,omitempty"`
	Action   string `json:"action"`
	Result   string `json:"result,omitempty"`
	Duration string `json:"duration,omitempty"`
	Details  string `json:"details,omitempty"`
}

func lineOf(e progress.Entry) logLine {
	return logLine{
		Time:     e.Time.Local().Format("15:04:05.000"),
		Phase:    termsafe.Text(e.Phase),
		Step:     termsafe.Text(e.Step),
		Action:   termsafe.Text(e.Action),
		Result:   termsafe.Text(e.Result),
		Duration: durationOf(e.DurationMS),
		Details:  termsafe.Lines(e.Details),
	}
}

func durationOf(ms float64) string {
	if ms <= 0 {
		return ""
	}
	return duration(time.Duration(ms * float64(time.Millisecond)))
}

// backlog bounds the entries a new stream starts with.
const backlog = 500

// keepalive is how often an idle stream gets a comment, so that proxies
// keep it open.
const keepalive = 15 * time.Second

// events streams server-sent events: with ?run=, the run's progress
// entries ("log", each batch's last one with the position to resume
// from, which EventSource sends back as Last-Event-ID), and "change" when
// what the page shows changed (the run, or the list of runs and the
// questions), for the page to fetch itself again.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	run := r.URL.Query().Get("run")
	var after int64
	resumed := false
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		resumed = true
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "serve: Last-Event-ID is not a position", http.StatusBadRequest)
			return
		}
		after = n
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	ctx := r.Context()
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	// The page says what it showed: a change since is sent at once.
	sig, _ := strconv.ParseUint(r.URL.Query().Get("v"), 16, 64)
	lastChange, lastWrite := time.Time{}, time.Now()
	for {
		wrote := false
		if run != "" {
			entries, next, err := s.cfg.Progress(ctx, run, after)
			if err != nil {
				s.cfg.Log.Warn("progress not read", "error", err)
			} else {
				var mine []progress.Entry
				for _, e := range entries {
					if e.Session == run {
						mine = append(mine, e)
					}
				}
				if !resumed && len(mine) > backlog {
					// A long run's page starts with its latest entries.
					skip := progress.Entry{Time: mine[0].Time, Phase: "log", Action: "…",
						Details: fmt.Sprintf("%d earlier entries: 12fa logs %s shows them", len(mine)-backlog, run)}
					mine = append([]progress.Entry{skip}, mine[len(mine)-backlog:]...)
				}
				resumed = true
				for i, e := range mine {
					b, _ := json.Marshal(lineOf(e))
					id := ""
					if i == len(mine)-1 {
						id = "id: " + strconv.FormatInt(next, 10) + "\n"
					}
					if _, err := fmt.Fprintf(w, "%sevent: log\ndata: %s\n\n", id, b); err != nil {
						return
					}
					wrote = true
				}
				if len(mine) == 0 && next != after {
					// Others' entries only: the position moves on.
					if _, err := fmt.Fprintf(w, "id: %d\nevent: pos\ndata: {}\n\n", next); err != nil {
						return
					}
					wrote = true
				}
				after = next
			}
		}
		if time.Since(lastChange) >= time.Second {
			lastChange = time.Now()
			if now := s.signature(run); now != 0 && now != sig {
				if sig != 0 {
					if _, err := fmt.Fprint(w, "event: change\ndata: {}\n\n"); err != nil {
						return
					}
					wrote = true
				}
				sig = now
			}
		}
		if !wrote && time.Since(lastWrite) >= keepalive {
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			wrote = true
		}
		if wrote {
			lastWrite = time.Now()
			if err := rc.Flush(); err != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
	}
}

// noStore is the signature of a project with no store yet: its first run
// changes it.
const noStore = 2

// signature sums up what a page shows, to tell when it changed: a run's
// last record and status, or the first page of runs, and the questions'
// states. 0 when the store cannot be read now.
func (s *Server) signature(run string) uint64 {
	v, release, err := s.cfg.Open()
	if errors.Is(err, state.ErrNotInitialized) {
		return noStore
	}
	if err != nil {
		return 0
	}
	defer release()
	return signatureOf(v, run, nil)
}

// signatureOf is signature on an open view; loaded is run, when read
// already.
func signatureOf(v *runtime.View, run string, loaded *state.Run) uint64 {
	h := fnv.New64a()
	if run != "" {
		if loaded == nil {
			r, err := v.Run(run)
			if err != nil {
				return 0
			}
			loaded = &r
		}
		r := loaded
		fmt.Fprintf(h, "%s %s %d\n", r.Status, r.UpdatedAt, len(r.Steps))
		for _, st := range r.Steps {
			fmt.Fprintf(h, "%s %d\n", st.Status, st.Attempt)
		}
	} else {
		_ = v.Walk(state.ListOptions{Limit: pageSize}, func(info state.RunInfo) bool {
			fmt.Fprintf(h, "%s %s %s %d\n", info.ID, info.Status, info.UpdatedAt, info.Done)
			return true
		})
	}
	qs, err := v.Questions()
	if err != nil {
		return 0
	}
	for _, q := range qs {
		if run == "" || q.Run == run {
			fmt.Fprintf(h, "%s %s\n", q.ID, q.Status)
		}
	}
	return h.Sum64() | 1
}
