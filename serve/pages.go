package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/12fa/12fa/features"
	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/internal/termsafe"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// pageSize is how many runs a page lists.
const pageSize = 50

// funcs are the templates' helpers. guest shows text a step wrote.
var funcs = template.FuncMap{
	"guest": termsafe.Lines,
	"line":  termsafe.FirstLine,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"ms":  func(ms float64) string { return duration(time.Duration(ms * float64(time.Millisecond))) },
	"dur": duration,
	"bytes": func(n int) string {
		switch {
		case n < 1024:
			return fmt.Sprintf("%d B", n)
		case n < 1<<20:
			return fmt.Sprintf("%.1f KiB", float64(n)/1024)
		}
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
}

func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string
	// Live names the events the page follows (EventSource), "" for none.
	Live    string
	Pending int // questions waiting, in the header
	Flash   string
	Error   string
	Data    any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, status int, p page) {
	// Renders into a buffer: a template error is a 500, not half a page.
	var b bytes.Buffer
	if err := s.pages[name].Execute(&b, p); err != nil {
		s.cfg.Log.Error("render", "page", name, "error", err)
		http.Error(w, "serve: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.render(w, r, "error", status, page{Title: http.StatusText(status), Error: err.Error()})
}

// view opens the store for one request. empty, when set, renders the
// page for a project with no store yet (no run ever started).
func (s *Server) view(w http.ResponseWriter, r *http.Request, empty func()) (*runtime.View, func(), bool) {
	v, release, err := s.cfg.Open()
	if errors.Is(err, state.ErrNotInitialized) && empty != nil {
		empty()
		return nil, nil, false
	}
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("the store cannot be read: %w", err))
		return nil, nil, false
	}
	return v, release, true
}

// pendingByRun counts the questions waiting, by run.
func pendingByRun(qs []inputs.Question) (map[string]int, int) {
	by := map[string]int{}
	n := 0
	for _, q := range qs {
		if q.Status == inputs.Pending {
			by[q.Run]++
			n++
		}
	}
	return by, n
}

// runsData is the runs page.
type runsData struct {
	Runs     []runRow
	Statuses []statusFilter
	Workflow string
	Page     int
	Prev     string
	Next     string
	Filtered bool
}

type runRow struct {
	state.RunInfo
	Waiting  int
	Duration time.Duration
}

type statusFilter struct {
	Name string
	On   bool
}

var allStatuses = []state.RunStatus{state.RunRunning, state.RunWaiting, state.RunPaused, state.RunFailed, state.RunCompleted,
	state.RunRollingBack, state.RunRolledBack, state.RunRollbackFailed}

func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lo := state.ListOptions{Workflow: q.Get("workflow")}
	d := runsData{Workflow: lo.Workflow}
	for _, st := range allStatuses {
		on := slices.Contains(q["status"], string(st))
		if on {
			lo.Status = append(lo.Status, st)
		}
		d.Statuses = append(d.Statuses, statusFilter{Name: string(st), On: on})
	}
	d.Filtered = len(lo.Status) > 0 || lo.Workflow != ""
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Page = max(d.Page, 1)
	v, release, ok := s.view(w, r, func() {
		s.render(w, r, "runs", http.StatusOK, page{Title: "Runs", Nav: "runs", Live: live("/events", noStore), Data: d})
	})
	if !ok {
		return
	}
	defer release()
	// A page is the runs after the ones before it, one more saying there
	// are more; the walk keeps none but the page.
	skip := (d.Page - 1) * pageSize
	more := false
	err := v.Walk(lo, func(info state.RunInfo) bool {
		if skip > 0 {
			skip--
			return true
		}
		if len(d.Runs) == pageSize {
			more = true
			return false
		}
		row := runRow{RunInfo: info}
		if info.Status.Finished() {
			row.Duration = info.UpdatedAt.Sub(info.CreatedAt)
		}
		d.Runs = append(d.Runs, row)
		return true
	})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	qs, err := v.Questions()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	by, pending := pendingByRun(qs)
	for i := range d.Runs {
		d.Runs[i].Waiting = by[d.Runs[i].ID]
	}
	pageURL := func(n int) string {
		u := url.Values{}
		for k, vs := range q {
			u[k] = vs
		}
		u.Set("page", strconv.Itoa(n))
		if n == 1 {
			u.Del("page")
		}
		if len(u) == 0 {
			return "/"
		}
		return "/?" + u.Encode()
	}
	if d.Page > 1 {
		d.Prev = pageURL(d.Page - 1)
	}
	if more {
		d.Next = pageURL(d.Page + 1)
	}
	s.render(w, r, "runs", http.StatusOK, page{Title: "Runs", Nav: "runs", Live: live("/events", signatureOf(v, "", nil)), Pending: pending, Data: d})
}

// runData is a run's page.
type runData struct {
	Run       state.Run
	Why       string
	Steps     []stepRow
	Context   []kv
	Questions []qForm
	Answered  []inputs.Question
	Checks    []runtime.Checkpoint
	Resumable bool
	Retry     bool
	Span      time.Duration
	// Window: a long run's page shows stepsShown of its steps (and their
	// checkpoints), from First (1-based); Earlier and Later page on.
	First, Last    int
	Earlier, Later string
}

// stepsShown bounds the steps a run's page shows at once.
const stepsShown = 200

type stepRow struct {
	state.Step
	// Offset and Width place the step's last attempt on the run's
	// timeline, in percent.
	Offset, Width float64
	Note          string
}

type kv struct{ Key, Value string }

// qForm is a question's form; Back names the page the answer returns to.
type qForm struct {
	Q    inputs.Question
	Back string
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	v, release, ok := s.view(w, r, nil)
	if !ok {
		return
	}
	defer release()
	run, err := v.Run(r.PathValue("id"))
	if errors.Is(err, runtime.ErrRunNotFound) {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	d := runData{Run: run, Why: runtime.StopReason(run)}
	end := run.UpdatedAt
	if now := s.cfg.Now(); !run.Status.Finished() && now.After(end) {
		end = now
	}
	d.Span = end.Sub(run.CreatedAt)
	// A long run shows a window of its steps: by default the one where it
	// stands (its first step not completed).
	from := 0
	if len(run.Steps) > stepsShown {
		if f, err := strconv.Atoi(r.URL.Query().Get("from")); err == nil {
			from = f - 1
		} else {
			for i, st := range run.Steps {
				if st.Status != state.StepCompleted {
					from = i - i%stepsShown
					break
				}
				from = i - i%stepsShown
			}
		}
		from = min(max(from, 0), len(run.Steps)-1)
	}
	to := min(from+stepsShown, len(run.Steps))
	d.First, d.Last = from+1, to
	pageAt := func(i int) string { return "/runs/" + url.PathEscape(run.ID) + "?from=" + strconv.Itoa(i+1) + "#steps" }
	if from > 0 {
		d.Earlier = pageAt(max(from-stepsShown, 0))
	}
	if to < len(run.Steps) {
		d.Later = pageAt(to)
	}
	shown := map[string]bool{}
	for _, st := range run.Steps[from:to] {
		shown[st.ID] = true
		row := stepRow{Step: st}
		if !st.StartedAt.IsZero() && d.Span > 0 {
			stop := st.EndedAt
			if stop.IsZero() {
				stop = end
			}
			row.Offset = 100 * float64(st.StartedAt.Sub(run.CreatedAt)) / float64(d.Span)
			row.Width = max(100*float64(stop.Sub(st.StartedAt))/float64(d.Span), 0.5)
			row.Offset = min(max(row.Offset, 0), 99.5)
			row.Width = min(row.Width, 100-row.Offset)
		}
		switch {
		case st.MarkedDone:
			row.Note = "marked done by hand"
		case st.Status == state.StepRunning && run.Status == state.RunRunning:
			row.Note = "started, not ended (interrupted unless a run is in progress)"
		case st.Cause != "":
			row.Note = string(st.Cause) + ": " + st.Error
		default:
			row.Note = st.Error
		}
		d.Steps = append(d.Steps, row)
	}
	for k, val := range run.Context {
		d.Context = append(d.Context, kv{k, clip(string(val), 2000)})
	}
	slices.SortFunc(d.Context, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	qs, err := v.Questions()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	_, pending := pendingByRun(qs)
	for _, q := range qs {
		if q.Run != run.ID {
			continue
		}
		if q.Status == inputs.Pending {
			d.Questions = append(d.Questions, qForm{q, "run"})
		} else {
			d.Answered = append(d.Answered, q)
		}
	}
	checks, err := v.RunCheckpoints(run)
	if err != nil {
		s.cfg.Log.Warn("checkpoints not read", "run", run.ID, "error", err)
	}
	for _, cp := range checks {
		if shown[cp.Step] {
			d.Checks = append(d.Checks, cp)
		}
	}
	switch run.Status {
	case state.RunPaused:
		d.Resumable = true
	case state.RunFailed:
		d.Resumable, d.Retry = true, true
	case state.RunWaiting:
		d.Resumable = len(d.Questions) == 0
	}
	d.Resumable = d.Resumable && s.cfg.Resume != nil
	s.render(w, r, "run", http.StatusOK, page{Title: "Run " + run.ID, Nav: "runs", Live: live("/events?run="+url.QueryEscape(run.ID), signatureOf(v, run.ID, &run)),
		Pending: pending, Flash: flash(r), Data: d})
}

// flashes are the messages a redirect may ask a page to show: only these,
// so that a crafted link cannot put words of its own on the page.
var flashes = regexp.MustCompile(`^(answered q-[0-9a-f]{1,32}|resume started)$`)

// flash is the message the redirect to r asks for, or "".
func flash(r *http.Request) string {
	if m := r.URL.Query().Get("done"); flashes.MatchString(m) {
		return m
	}
	return ""
}

// live is the events URL of a page that showed what sig sums up.
func live(events string, sig uint64) string {
	sep := "?"
	if strings.Contains(events, "?") {
		sep = "&"
	}
	return events + sep + "v=" + strconv.FormatUint(sig, 16)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// outputData is a step's output page.
type outputData struct {
	Run, Step string
	JSON      string
	Binary    bool
}

func (s *Server) output(w http.ResponseWriter, r *http.Request) {
	v, release, ok := s.view(w, r, nil)
	if !ok {
		return
	}
	defer release()
	run, err := v.Run(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	st, ok := run.Step(r.PathValue("step"))
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("run %s has no step %q", run.ID, r.PathValue("step")))
		return
	}
	if r.URL.Query().Has("raw") {
		// As text, never as something a browser would run.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", "inline")
		_, _ = w.Write(st.Output)
		return
	}
	var b bytes.Buffer
	if err := json.Indent(&b, st.Output, "", "  "); err != nil {
		b.Reset()
		b.Write(st.Output)
	}
	s.render(w, r, "output", http.StatusOK, page{Title: "Output of " + st.ID, Nav: "runs",
		Data: outputData{Run: run.ID, Step: st.ID, JSON: b.String(), Binary: st.OutputBinary}})
}

// inputsData is the questions page.
type inputsData struct {
	Pending  []qForm
	Answered []inputs.Question
}

func (s *Server) inputs(w http.ResponseWriter, r *http.Request) {
	v, release, ok := s.view(w, r, func() {
		s.render(w, r, "inputs", http.StatusOK, page{Title: "Questions", Nav: "inputs", Live: live("/events", noStore), Data: inputsData{}})
	})
	if !ok {
		return
	}
	defer release()
	qs, err := v.Questions()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	var d inputsData
	for _, q := range qs {
		if q.Status == inputs.Pending {
			d.Pending = append(d.Pending, qForm{q, "inputs"})
		} else {
			d.Answered = append(d.Answered, q)
		}
	}
	slices.SortFunc(d.Answered, func(a, b inputs.Question) int { return b.AnsweredAt.Compare(a.AnsweredAt) })
	s.render(w, r, "inputs", http.StatusOK, page{Title: "Questions", Nav: "inputs", Live: live("/events", signatureOf(v, "", nil)), Pending: len(d.Pending),
		Flash: flash(r), Data: d})
}

// answer answers a question from its form, with the checks of `12fa
// respond`, then goes back to the page the form was on.
func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	answer := r.PostForm.Get("answer")
	if answer == "" {
		answer = r.PostForm.Get("choice")
	}
	v, release, ok := s.view(w, r, nil)
	if !ok {
		return
	}
	defer release()
	q, err := v.Respond(r.PathValue("id"), answer)
	if err != nil {
		s.fail(w, r, respondStatus(err), fmt.Errorf("answer not taken: %w", err))
		return
	}
	back := "/inputs"
	if r.PostForm.Get("back") == "run" {
		back = "/runs/" + url.PathEscape(q.Run)
	}
	http.Redirect(w, r, back+"?done="+url.QueryEscape("answered "+q.ID), http.StatusSeeOther)
}

// respondStatus is the HTTP status of an answer Respond refused: no such
// question, or one it does not take (answered, not an option).
func respondStatus(err error) int {
	if errors.Is(err, inputs.ErrNotFound) {
		return http.StatusNotFound
	}
	return http.StatusConflict
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.cfg.Resume == nil {
		s.fail(w, r, http.StatusNotImplemented, errors.New("this server does not resume runs"))
		return
	}
	v, release, ok := s.view(w, r, nil)
	if !ok {
		return
	}
	run, err := v.Run(id)
	release()
	if err != nil {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err := s.cfg.Resume(run.ID, run.Status == state.RunFailed); err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("resume %s: %w", run.ID, err))
		return
	}
	http.Redirect(w, r, "/runs/"+url.PathEscape(run.ID)+"?done="+url.QueryEscape("resume started"), http.StatusSeeOther)
}

func (s *Server) features(w http.ResponseWriter, r *http.Request) {
	fs, err := features.New(runtime.StoreDir(s.cfg.ProjectDir), s.cfg.Now).List("")
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, "features", http.StatusOK, page{Title: "Features", Nav: "features", Data: fs})
}
