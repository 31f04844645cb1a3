// Package notify sends notifications: an ntfy client (ntfy's JSON publish
// API) that never makes a run wait. Notifications are queued, sent in the
// background with retries and backoff, and dropped (with a log line) when
// the server cannot be reached; Close waits a bounded time for the queue.
//
// notify imports abi only; runtime decides what is sent and when.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/12fa/12fa/abi"
)

// Config configures an ntfy client.
type Config struct {
	// URL is the ntfy server, e.g. https://ntfy.sh (publish goes to its root).
	URL string
	// Topic is the topic notifications go to.
	Topic string
	// Token, when set, is sent as a bearer token.
	Token string
	// Attempts per notification (default 3), waiting Backoff (default
	// 500ms) and doubling between them.
	Attempts int
	Backoff  time.Duration
	// Queue bounds the notifications waiting to be sent (default 64); more
	// are dropped with a log line.
	Queue int
	// Client is the HTTP client; default one with a 10s timeout.
	Client *http.Client
}

// FromEnv reads ENABLE_NTFY, NTFY_URL, NTFY_TOPIC and NTFY_TOKEN. ok is
// false unless ENABLE_NTFY is set to a true value.
func FromEnv() (cfg Config, ok bool) {
	switch os.Getenv("ENABLE_NTFY") {
	case "1", "true", "yes", "on":
	default:
		return Config{}, false
	}
	return Config{URL: os.Getenv("NTFY_URL"), Topic: os.Getenv("NTFY_TOPIC"), Token: os.Getenv("NTFY_TOKEN")}, true
}

// Ntfy is an ntfy client. Its methods are safe for concurrent use.
type Ntfy struct {
	cfg   Config
	log   hclog.Logger
	queue chan abi.Notification
	wg    sync.WaitGroup
	once  sync.Once
}

// New returns a client and starts its sender.
func New(cfg Config, log hclog.Logger) (*Ntfy, error) {
	if cfg.URL == "" || cfg.Topic == "" {
		return nil, errors.New("notify: ntfy needs a URL and a topic")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 64
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	n := &Ntfy{cfg: cfg, log: log, queue: make(chan abi.Notification, cfg.Queue)}
	n.wg.Add(1)
	go n.send()
	return n, nil
}

// Notify queues m and returns at once. It fails only when the queue is
// full (the notification is dropped).
func (n *Ntfy) Notify(_ context.Context, m abi.Notification) error {
	select {
	case n.queue <- m:
		return nil
	default:
		n.log.Warn("notification dropped: queue full", "title", m.Title)
		return errors.New("notify: queue full")
	}
}

// Close sends what is queued, waiting at most until ctx is done; what is
// left then is dropped.
func (n *Ntfy) Close(ctx context.Context) error {
	n.once.Do(func() { close(n.queue) })
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notify: gave up on queued notifications: %w", ctx.Err())
	}
}

func (n *Ntfy) send() {
	defer n.wg.Done()
	for m := range n.queue {
		wait := n.cfg.Backoff
		for attempt := 1; ; attempt++ {
			err := n.post(m)
			if err == nil {
				break
			}
			if attempt >= n.cfg.Attempts {
				n.log.Warn("notification dropped", "title", m.Title, "attempts", attempt, "error", err)
				break
			}
			time.Sleep(wait)
			wait *= 2
		}
	}
}

// publish is ntfy's JSON publish document.
type publish struct {
	Topic string `json:"topic"`
	abi.Notification
}

func (n *Ntfy) post(m abi.Notification) error {
	b, err := json.Marshal(publish{Topic: n.cfg.Topic, Notification: m})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, n.cfg.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if n.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.Token)
	}
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("ntfy answered %s", resp.Status)
	}
	return nil
}
