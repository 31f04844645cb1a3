package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/notify"
)

// server records what ntfy would have received.
type server struct {
	mu     sync.Mutex
	bodies []map[string]any
	auth   []string
	fail   int // fail this many requests first
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s.bodies = append(s.bodies, m)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
}

func TestNtfy_PublishesJSON(t *testing.T) {
	srv := &server{fail: 1}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	n, err := notify.New(notify.Config{URL: ts.URL, Topic: "runs", Token: "tk", Backoff: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(t.Context(), abi.Notification{Title: "Input required", Message: "2 questions", Priority: 4,
		Tags: []string{"question"}, Click: "http://localhost/x", Actions: []abi.Action{{Action: "view", Label: "Open", URL: "http://localhost/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(srv.bodies) != 1 {
		t.Fatalf("%d notifications arrived, want 1 (after one retry)", len(srv.bodies))
	}
	m := srv.bodies[0]
	if m["topic"] != "runs" || m["title"] != "Input required" || m["message"] != "2 questions" || m["priority"] != 4.0 ||
		m["click"] != "http://localhost/x" || srv.auth[0] != "Bearer tk" {
		t.Fatalf("published %v with auth %q", m, srv.auth[0])
	}
	if acts, _ := m["actions"].([]any); len(acts) != 1 {
		t.Fatalf("actions %v", m["actions"])
	}
}

// TestNtfy_UnreachableServer: Notify never blocks, and Close gives up at its
// deadline.
func TestNtfy_UnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	n, err := notify.New(notify.Config{URL: "http://" + addr, Topic: "t", Backoff: 50 * time.Millisecond, Queue: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 10 {
		_ = n.Notify(t.Context(), abi.Notification{Message: "x"})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Notify blocked for %s", d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_ = n.Close(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %s", d)
	}
}
