// Package serve is `12fa serve`: a dashboard of a project's runs that
// people watch and answer questions from in a browser. It shows the runs
// (live, filtered in the URL), a run's steps as a timeline of attempts,
// its context, checkpoints and log as it happens (server-sent events), the
// questions steps asked with a form for each, and the features.
//
// It reads the store without its lock, so it watches runs other processes
// drive, and it writes only what `12fa respond` writes (an answer) or
// starts what `12fa resume` does, in a process of its own (Config.Resume).
//
// Steps are untrusted and everything they wrote (outputs, logs, questions,
// errors) is shown escaped by html/template, with control and
// bidirectional characters made visible. Pages carry a content security
// policy that allows only this server's own script and style; forms are
// protected against cross-site requests (http.CrossOriginProtection). On
// a loopback address a request must name a loopback host (no DNS
// rebinding); elsewhere it must carry the token.
//
// serve imports runtime, state, inputs, progress, features and 12fa's
// internal helpers.
package serve

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/12fa/12fa/notify"
	"github.com/12fa/12fa/progress"
	"github.com/12fa/12fa/runtime"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a dashboard.
type Config struct {
	// ProjectDir is the project (its features.json, and its store unless
	// Open says otherwise).
	ProjectDir string
	// Open returns a view of the store for one request and a function that
	// releases it. The file store's view is a snapshot, so it is opened per
	// request; a database's is shared.
	Open func() (view *runtime.View, release func(), err error)
	// Progress returns the progress entries after position after (all
	// when 0) and the position of the last: the project's progress.jsonl,
	// or a database's copy (pgstore.Store.Progress).
	Progress func(ctx context.Context, run string, after int64) ([]progress.Entry, int64, error)
	// Resume, when set, resumes a run (`12fa resume` in a process of its
	// own: serve holds no lock); retryFailed is resume --retry-failed.
	Resume func(run string, retryFailed bool) error
	// Token, when set, is required of every request: Authorization:
	// Bearer, or ?token= once (the answer sets a cookie).
	Token string
	// Loopback: the server listens on a loopback address; a request must
	// name a loopback host (or PublicHost).
	Loopback bool
	// Links, when set, takes answers from notifications' buttons
	// (POST /a/{question}, signed: no token needed).
	Links *notify.AnswerLinks
	// PublicHost is the host of the public URL (a reverse proxy's), which
	// a request on loopback may name too.
	PublicHost string
	// Poll is how often the live events look for new log entries (250 ms
	// when 0).
	Poll time.Duration
	Log  hclog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Server is a dashboard; it is an http.Handler.
type Server struct {
	cfg   Config
	pages map[string]*template.Template
	h     http.Handler
}

// New returns the dashboard of cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Open == nil {
		return nil, errors.New("serve: no store (Config.Open)")
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Progress == nil {
		path := runtime.ProgressPath(cfg.ProjectDir)
		cfg.Progress = func(_ context.Context, _ string, after int64) ([]progress.Entry, int64, error) {
			return progress.Read(path, after)
		}
	}
	s := &Server{cfg: cfg, pages: map[string]*template.Template{}}
	for _, name := range []string{"runs", "run", "inputs", "features", "output", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("serve: template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.runs)
	mux.HandleFunc("GET /runs/{id}", s.run)
	mux.HandleFunc("GET /runs/{id}/steps/{step}/output", s.output)
	mux.HandleFunc("POST /runs/{id}/resume", s.resume)
	mux.HandleFunc("GET /inputs", s.inputs)
	mux.HandleFunc("POST /inputs/{id}", s.answer)
	mux.HandleFunc("GET /features", s.features)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("POST /a/{id}", s.answerLink)
	mux.HandleFunc("OPTIONS /a/{id}", s.answerLink)
	// Answers and resumes come from this site's own pages only, but for
	// the signed links that phones post from anywhere.
	cop := http.NewCrossOriginProtection()
	cop.AddInsecureBypassPattern("POST /a/{id}")
	s.h = s.guard(cop.Handler(mux))
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// cookieName holds the token once a browser showed it.
const cookieName = "twelvefa_token"

// guard sets the headers every answer carries and refuses a request that
// names a foreign host on loopback or lacks the token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if s.cfg.Loopback && !loopbackHost(r.Host) && !strings.EqualFold(r.Host, s.cfg.PublicHost) {
			http.Error(w, "serve: this server answers to localhost only (the request named host "+fmt.Sprintf("%q", r.Host)+")", http.StatusForbidden)
			return
		}
		if s.cfg.Token != "" && !strings.HasPrefix(r.URL.Path, "/a/") {
			if t := r.URL.Query().Get("token"); t != "" && s.tokenOK(t) && r.Method == http.MethodGet {
				// Shown once in a link: kept in a cookie, and the link
				// without it.
				http.SetCookie(w, &http.Cookie{Name: cookieName, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
				q := r.URL.Query()
				q.Del("token")
				u := *r.URL
				u.RawQuery = q.Encode()
				http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
				return
			}
			if !s.authorized(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="12fa"`)
				http.Error(w, "serve: a token is required: open the link `12fa serve` printed (…/?token=…), or send Authorization: Bearer <token>", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.tokenOK(auth) {
		return true
	}
	c, err := r.Cookie(cookieName)
	return err == nil && s.tokenOK(c.Value)
}

func (s *Server) tokenOK(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.cfg.Token)) == 1
}

// loopbackHost reports whether a Host header names this machine's
// loopback: localhost, 127.0.0.0/8 or ::1, with any port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopback reports whether addr (host:port) listens on loopback only.
func IsLoopback(addr string) bool {
	_, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(addr)
}
