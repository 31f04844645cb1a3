//go:build integration

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/12fa/12fa/internal/pgtest"
	"github.com/12fa/12fa/pgstore"
)

// Scale-out tests (../shared/research/scale-out.md, section 6): real
// `12fa worker` processes on a real PostgreSQL, killed, stopped and
// terminated, with short leases (a heartbeat every 200ms, leases of 1.5s).

const (
	testHeartbeat = "200ms"
	testLease     = "1500ms"
)

// cluster is a database and the workers a test starts on it.
type cluster struct {
	t   *testing.T
	url string
	db  *pgxpool.Pool
	dir string

	mu      sync.Mutex
	workers []*workerProc
}

type workerProc struct {
	name string
	dir  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	// done is closed when the process exited, with err its Wait's.
	done chan struct{}
	err  error
	mu   *sync.Mutex
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterAt(t, pgtest.URL(t))
}

func newClusterAt(t *testing.T, url string) *cluster {
	t.Helper()
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, url: url, db: db, dir: t.TempDir()}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, w := range c.workers {
			_ = w.cmd.Process.Signal(syscall.SIGCONT)
			_ = w.cmd.Process.Kill()
			<-w.done
			if t.Failed() {
				t.Logf("worker %s:\n%s", w.name, w.logText())
			}
		}
		db.Close()
	})
	return c
}

func (c *cluster) env() []string {
	return append(os.Environ(), "TWELVEFA_STORE="+c.url, "TWELVEFA_HEARTBEAT="+testHeartbeat, "TWELVEFA_LEASE="+testLease)
}

// worker starts `12fa worker` in a project directory of its own.
func (c *cluster) worker(name string, args ...string) *workerProc {
	c.t.Helper()
	return c.workerAt(name, c.url, args...)
}

// workflow writes a manifest of steps of the effect plugin (copied beside
// it), each sleeping sleepMS, and returns its path.
func (c *cluster) workflow(name string, steps int, sleepMS int, idempotent bool) string {
	c.t.Helper()
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(examples(c.t), "effect", "effect.wasm"))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "effect.wasm"), wasm, 0o644); err != nil {
		c.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[workflow]\nname = %q\n\n[checkpoint]\ngit = false\n\n", name)
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&b, "[[step]]\nid = \"s%d\"\nplugin = \"effect.wasm\"\ninput = { sleep_ms = %d }\nidempotent = %v\n\n", i, sleepMS, idempotent)
	}
	p := filepath.Join(dir, "plugin-manifest.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cluster) cli(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(bin, append([]string{"-C", c.dir, "--cache-dir", cacheDir}, args...)...)
	cmd.Env = c.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("12fa %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c *cluster) submit(manifest string, n int) []string {
	c.t.Helper()
	return strings.Fields(c.cli("submit", "--count", fmt.Sprint(n), manifest))
}

// workerAt starts `12fa worker` on the database at url (through a proxy,
// say).
func (c *cluster) workerAt(name, url string, args ...string) *workerProc {
	c.t.Helper()
	dir := filepath.Join(c.dir, "worker-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	w := &workerProc{name: name, dir: dir, log: &bytes.Buffer{}, done: make(chan struct{}), mu: &sync.Mutex{}}
	w.cmd = exec.Command(bin, append([]string{"-C", dir, "--cache-dir", cacheDir, "worker"}, args...)...)
	w.cmd.Env = append(c.env(), "TWELVEFA_STORE="+url)
	// A worker dies with the test binary, even one killed by its timeout.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	w.cmd.Stdout, w.cmd.Stderr = lockedWriter{w.mu, w.log}, lockedWriter{w.mu, w.log}
	if err := w.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	c.mu.Lock()
	c.workers = append(c.workers, w)
	c.mu.Unlock()
	return w
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (w *workerProc) logText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// signal sends sig and, for SIGKILL, waits for the process to be gone.
func (w *workerProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// count runs a query of one number (trying again for a while when the
// server is restarting).
func (c *cluster) count(sql string, args ...any) int {
	c.t.Helper()
	var n int
	var err error
	for range 100 {
		if err = c.db.QueryRow(context.Background(), sql, args...).Scan(&n); err == nil {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("%s: %v", sql, err)
	return 0
}

func (c *cluster) waitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			c.t.Fatalf("after %s: still waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// check runs `12fa store check --json` and fails the test unless the
// history is correct (no completed step run again, no gap, epochs in
// order).
func (c *cluster) check() pgstore.Audit {
	c.t.Helper()
	var a pgstore.Audit
	out := c.cli("store", "check", "--json")
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		c.t.Fatalf("store check --json: %v\n%s", err, out)
	}
	if a.CompletedRerun != 0 || a.Gaps != 0 || a.EpochDisorder != 0 {
		c.t.Fatalf("history not correct: %+v", a)
	}
	return a
}

// effects counts the effect plugin's log lines ("effect <step>") in the
// workers' progress logs.
func (c *cluster) effects() int {
	c.t.Helper()
	n := 0
	for _, w := range c.workers {
		b, err := os.ReadFile(filepath.Join(w.dir, ".12fa", "progress.jsonl"))
		if err != nil && !os.IsNotExist(err) {
			c.t.Fatal(err)
		}
		n += strings.Count(string(b), `"effect s`)
	}
	return n
}

const completedRuns = "SELECT count(*) FROM runs WHERE status = 'completed'"

// TestCluster_KillMidStep: a worker SIGKILLed while its runs are in the
// middle of steps has them taken over by another once the lease expired;
// every run completes, no completed step runs again (only the
// interrupted idempotent ones do), and a run whose interrupted step is
// not idempotent waits for a person, holding no worker.
func TestCluster_KillMidStep(t *testing.T) {
	c := newCluster(t)
	runs := c.submit(c.workflow("idem", 3, 300, true), 12)
	careful := c.submit(c.workflow("careful", 1, 3000, false), 1)[0]
	a := c.worker("a", "--concurrency", "13")
	// A is in the middle of steps of every run: the careful one's only step
	// has started and some steps have completed.
	c.waitFor("worker a in the middle of steps", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM records WHERE run_id = $1 AND type = 'step_started'", careful) == 1 &&
			c.count("SELECT count(*) FROM records WHERE type = 'step_completed'") >= 6
	})
	a.signal(t, syscall.SIGKILL)
	<-a.done
	killed := time.Now()
	before := c.count("SELECT count(*) FROM records WHERE type = 'step_completed'")
	held := c.count("SELECT count(*) FROM runs WHERE state = 'leased'")
	c.worker("b", "--concurrency", "13")
	c.waitFor("b to take the runs over", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM runs WHERE takeovers > 0") == held
	})
	takeover := time.Since(killed)
	c.waitFor("every idempotent run to complete", 60*time.Second, func() bool { return c.count(completedRuns) == len(runs) })
	c.waitFor("the careful run to wait for a person", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM runs WHERE id = $1 AND status = 'waiting' AND state = 'parked' AND owner IS NULL", careful) == 1
	})
	a2 := c.check()
	if a2.Takeovers != held {
		t.Errorf("takeovers = %d, want the %d runs a held", a2.Takeovers, held)
	}
	if n := c.count("SELECT count(*) FROM records WHERE type = 'step_completed'"); n != len(runs)*3 {
		t.Errorf("%d steps completed, want %d (one per step)", n, len(runs)*3)
	}
	// The progress log is written every 50ms: b's last lines may trail.
	c.waitFor("b's effects in its log", 5*time.Second, func() bool { return c.effects() >= len(runs)*3-before })
	t.Logf("SIGKILL with %d runs leased and %d steps completed: %d takeovers %.1fs after the kill (lease %s), %d interrupted steps run again, %d completed steps re-run; the non-idempotent run parked, waiting",
		held, before, a2.Takeovers, takeover.Seconds(), testLease, a2.Interrupted, a2.CompletedRerun)
}

// TestCluster_StoppedWorkerIsFenced: a worker paused past its lease
// (SIGSTOP) has its runs taken over; once continued it writes nothing
// more (its appends are refused, its steps canceled), and every record it
// wrote precedes the new holder's.
func TestCluster_StoppedWorkerIsFenced(t *testing.T) {
	c := newCluster(t)
	runs := c.submit(c.workflow("slow", 3, 700, true), 4)
	a := c.worker("a", "--concurrency", "4")
	c.waitFor("a in the middle of steps", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM records WHERE type = 'step_started'") >= 4
	})
	a.signal(t, syscall.SIGSTOP)
	c.worker("b", "--concurrency", "4")
	c.waitFor("b to take a's runs over", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM runs WHERE takeovers > 0 AND state = 'leased' AND owner NOT LIKE '%/' || $1 || '/%'", fmt.Sprint(a.cmd.Process.Pid)) == len(runs)
	})
	aRecords := c.count("SELECT count(*) FROM records")
	a.signal(t, syscall.SIGCONT)
	c.waitFor("every run to complete", 60*time.Second, func() bool { return c.count(completedRuns) == len(runs) })
	c.waitFor("a to say it gave its leases up", 10*time.Second, func() bool { return strings.Contains(a.logText(), "lease given up") })
	audit := c.check()
	if n := c.count("SELECT count(*) FROM records WHERE type = 'step_completed'"); n != len(runs)*3 {
		t.Errorf("%d steps completed, want %d", n, len(runs)*3)
	}
	// a's epoch was 1 for every run, b's 2: none of a's records follows
	// one of b's (the check's epoch order), and a wrote none after b took
	// over.
	if n := c.count("SELECT count(*) FROM records WHERE epoch = 1 AND at > (SELECT min(at) FROM records WHERE epoch = 2)"); n != 0 {
		t.Errorf("%d records written by a after b took over", n)
	}
	refused := strings.Count(a.logText(), "run given up: its lease was lost")
	t.Logf("SIGSTOP past the lease: %d takeovers, %d of a's runs given up after SIGCONT (%d records before), %d completed steps re-run",
		audit.Takeovers, refused, aRecords, audit.CompletedRerun)
}

// cutProxy forwards TCP connections to a server until cut; then it holds
// what either side sends, a connection's end included, until healed, as a
// network that lost its route does while TCP retransmits. A connection
// opened while cut reaches the server once healed.
type cutProxy struct {
	ln  net.Listener
	to  string
	mu  sync.Mutex
	cut bool
	ok  *sync.Cond
}

// newCutProxy proxies to the server of url and returns the URL through it.
func newCutProxy(t *testing.T, url string) (*cutProxy, string) {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, to: u.Host}
	p.ok = sync.NewCond(&p.mu)
	t.Cleanup(func() {
		p.set(false)
		ln.Close()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(conn)
		}
	}()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *cutProxy) set(cut bool) {
	p.mu.Lock()
	p.cut = cut
	p.mu.Unlock()
	p.ok.Broadcast()
}

// wait returns once the network is not cut.
func (p *cutProxy) wait() {
	p.mu.Lock()
	for p.cut {
		p.ok.Wait()
	}
	p.mu.Unlock()
}

func (p *cutProxy) pipe(conn net.Conn) {
	p.wait()
	up, err := net.Dial("tcp", p.to)
	if err != nil {
		conn.Close()
		return
	}
	go p.copy(up, conn)
	go p.copy(conn, up)
}

func (p *cutProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, err := dst.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.wait()
	dst.Close()
	src.Close()
}

// TestCluster_NetworkCut: a worker cut from the database (its
// connections open, nothing getting through) gives its leases up at its
// local deadline while still cut and cancels its steps; another worker
// takes its runs over once the lease expired. When the network heals,
// what it sent meanwhile reaches the server and writes nothing (the
// fence), and it takes and completes new runs.
func TestCluster_NetworkCut(t *testing.T) {
	c := newCluster(t)
	proxy, through := newCutProxy(t, c.url)
	runs := c.submit(c.workflow("cut", 3, 700, true), 4)
	a := c.workerAt("a", through, "--concurrency", "4")
	c.waitFor("a in the middle of steps", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM records WHERE type = 'step_started'") >= 4
	})
	proxy.set(true)
	cut := time.Now()
	c.worker("b", "--concurrency", "4")
	c.waitFor("a to give its leases up, cut off", 10*time.Second, func() bool { return strings.Contains(a.logText(), "lease given up") })
	gaveUp := time.Since(cut)
	c.waitFor("b to take a's runs over", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM runs WHERE takeovers > 0 AND state = 'leased' AND owner NOT LIKE '%/' || $1 || '/%'", fmt.Sprint(a.cmd.Process.Pid)) == len(runs)
	})
	tookOver := time.Since(cut)
	// Cut for a lease more: a's retries and heartbeats pile up.
	time.Sleep(1500 * time.Millisecond)
	proxy.set(false)
	healed := time.Now()
	c.waitFor("every run to complete", 60*time.Second, func() bool { return c.count(completedRuns) == len(runs) })
	// What a sent while cut reached the server and wrote nothing after b
	// took over (a's epoch is 1 for every run, b's 2).
	if n := c.count("SELECT count(*) FROM records WHERE epoch = 1 AND at > (SELECT min(at) FROM records WHERE epoch = 2)"); n != 0 {
		t.Errorf("%d records written by a after b took over", n)
	}
	audit := c.check()
	if audit.Takeovers != len(runs) {
		t.Errorf("takeovers = %d, want %d", audit.Takeovers, len(runs))
	}
	// Healed, a is a worker again: of new runs, it completes some.
	more := c.submit(c.workflow("after", 2, 300, true), 8)
	c.waitFor("the new runs to complete", 60*time.Second, func() bool { return c.count(completedRuns) == len(runs)+len(more) })
	c.waitFor("a to complete runs again", 10*time.Second, func() bool { return strings.Contains(a.logText(), "run ended") })
	c.check()
	refused := strings.Count(a.logText(), "run given up: its lease was lost")
	t.Logf("network cut under a with %d runs: a gave its leases up %.1fs into the cut (lease %s), b took them over at %.1fs; healed after %.1fs: %d of a's runs given up, 0 records of a's after b's, %d completed steps re-run; healed, a took and completed new runs (all done %.1fs after the heal)",
		len(runs), gaveUp.Seconds(), testLease, tookOver.Seconds(), healed.Sub(cut).Seconds(), refused, audit.CompletedRerun, time.Since(healed).Seconds())
}

// TestCluster_RacingWorkers: four workers race over 500 runs: no run is
// ever leased twice (each run's one lease), every step ran once.
func TestCluster_RacingWorkers(t *testing.T) {
	c := newCluster(t)
	const n = 500
	c.submit(c.workflow("race", 2, 0, true), n)
	start := time.Now()
	for i := range 4 {
		c.worker(fmt.Sprint(i), "--concurrency", "4")
	}
	c.waitFor("every run to complete", 120*time.Second, func() bool { return c.count(completedRuns) == n })
	took := time.Since(start)
	a := c.check()
	if a.Claims != n || a.Takeovers != 0 {
		t.Errorf("%d leases and %d takeovers for %d runs, want one lease each", a.Claims, a.Takeovers, n)
	}
	if got := c.count("SELECT count(*) FROM records WHERE type = 'step_started'"); got != 2*n {
		t.Errorf("%d steps started, want %d (each once)", got, 2*n)
	}
	if got := c.count("SELECT count(DISTINCT run_id) FROM records WHERE epoch > 1"); got != 0 {
		t.Errorf("%d runs written under a second lease", got)
	}
	t.Logf("4 workers × 4: %d runs, %d steps in %.1fs; %d leases, 0 doubled", n, 2*n, took.Seconds(), a.Claims)
}

// TestCluster_DrainOnSIGTERM: a worker sent SIGTERM stops taking runs,
// cancels the steps still running when the drain ends and hands the runs
// back to the queue at once: another worker finishes them without
// waiting for a lease to expire.
func TestCluster_DrainOnSIGTERM(t *testing.T) {
	c := newCluster(t)
	runs := c.submit(c.workflow("drain", 2, 4000, true), 3)
	a := c.worker("a", "--concurrency", "3", "--drain", "300ms")
	c.waitFor("a's steps to start", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM records WHERE type = 'step_started'") == len(runs)
	})
	a.signal(t, syscall.SIGTERM)
	stopped := time.Now()
	select {
	case <-a.done:
		if a.err != nil {
			t.Fatalf("worker a after SIGTERM: %v\n%s", a.err, a.logText())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("worker a still running 10s after SIGTERM\n%s", a.logText())
	}
	gone := time.Since(stopped)
	if n := c.count("SELECT count(*) FROM runs WHERE state = 'queued' AND owner IS NULL"); n != len(runs) {
		t.Fatalf("%d runs queued after a drained, want %d", n, len(runs))
	}
	c.worker("b", "--concurrency", "3")
	c.waitFor("every run to complete", 60*time.Second, func() bool { return c.count(completedRuns) == len(runs) })
	audit := c.check()
	if audit.Takeovers != 0 {
		t.Errorf("%d takeovers: the runs were handed back, not taken over", audit.Takeovers)
	}
	t.Logf("SIGTERM with %d steps running: a exited after %.2fs (drain 300ms), its runs queued at once; b completed them, %d completed steps re-run",
		len(runs), gone.Seconds(), audit.CompletedRerun)
}

// TestCluster_ParkAndWake: a run whose step asks questions parks, holding
// no worker; `12fa respond` from another process answers them, the last
// answer puts the run back in the queue in its transaction, and the
// listening worker wakes and completes it.
func TestCluster_ParkAndWake(t *testing.T) {
	c := newCluster(t)
	manifest := c.workflow("asks", 1, 0, true)
	ask, err := os.ReadFile(filepath.Join(examples(t), "ask", "ask.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(manifest), "ask.wasm"), ask, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(manifest, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[[step]]\nid = \"approve\"\nplugin = \"ask.wasm\"\nidempotent = true\n\n[[step]]\nid = \"after\"\nplugin = \"effect.wasm\"\nidempotent = true\n")
	f.Close()
	run := c.submit(manifest, 1)[0]
	// Two workers listen; with the poll at 1s, waking well under it is the
	// notification's doing.
	c.worker("a", "--concurrency", "2")
	c.worker("b", "--concurrency", "2")
	c.waitFor("the run to park, waiting", 30*time.Second, func() bool {
		return c.count("SELECT count(*) FROM runs WHERE id = $1 AND status = 'waiting' AND state = 'parked' AND owner IS NULL", run) == 1
	})
	if n := c.count("SELECT count(*) FROM runs WHERE state = 'leased'"); n != 0 {
		t.Fatalf("%d runs leased while the only run waits", n)
	}
	var doc struct {
		Questions []struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"questions"`
	}
	out := c.cli("inputs", "--json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Questions) != 2 {
		t.Fatalf("inputs --json through the database: %v\n%s", err, out)
	}
	var first, last string
	for _, q := range doc.Questions {
		if q.Key == "deploy" {
			first = q.ID
		} else {
			last = q.ID
		}
	}
	// The first answer leaves a question pending: the run stays parked.
	c.cli("respond", first, "yes")
	time.Sleep(300 * time.Millisecond)
	if n := c.count("SELECT count(*) FROM runs WHERE id = $1 AND state = 'parked'", run); n != 1 {
		t.Fatal("the run left the parking with a question still pending")
	}
	// From the start of the answering process to the run leased again:
	// the process's start and its connection included.
	responded := time.Now()
	c.cli("respond", last, "r1")
	c.waitFor("a worker to take the run again", 10*time.Second, func() bool {
		return c.count("SELECT count(*) FROM runs WHERE id = $1 AND state <> 'parked' AND state <> 'queued'", run) == 1
	})
	woke := time.Since(responded)
	c.waitFor("the run to complete", 30*time.Second, func() bool { return c.count(completedRuns) == 1 })
	var output string
	if err := c.db.QueryRow(context.Background(), "SELECT body->>'output' FROM records WHERE run_id = $1 AND type = 'step_completed' AND step = 'approve'", run).Scan(&output); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(output, `"deploy":true`) || !strings.Contains(output, `"release":"r1"`) {
		t.Errorf("approve's output %s, want the answers", output)
	}
	c.check()
	// The steps' log lines, written by whichever worker ran them, read
	// through the database from a third project directory. A worker's
	// progress log copies its entries there a batch at a time, off the
	// steps' path: they may follow the run's end by a flush (50 ms).
	var logs string
	c.waitFor("the run's log lines in the database", 5*time.Second, func() bool {
		logs = c.cli("logs", run)
		return strings.Contains(logs, "deploy=yes name=r1") && strings.Contains(logs, "effect s1")
	})
	if woke > time.Second {
		t.Errorf("the run was taken %s after the answer, want well under the 1s poll", woke)
	}
	t.Logf("parked with 0 leases held; taken again %s after `12fa respond` started (poll 1s)", woke.Round(time.Millisecond))
}

// TestCluster_PostgresRestarts: the server restarted under two busy
// workers, fast, immediate (a crash, recovered from the WAL), and stopped
// for longer than the lease: every run completes, no completed step runs
// again, no sequence number is written twice or skipped, and no run is
// taken over: the short outages end before any lease, and after the long
// one the workers, alive, hand back the runs they gave up instead of a
// reaper declaring them dead (the reaper waits a lease after a restart).
func TestCluster_PostgresRestarts(t *testing.T) {
	pg := pgtest.NewCluster(t)
	c := newClusterAt(t, pg.URL)
	runs := c.submit(c.workflow("restart", 4, 250, true), 16)
	c.worker("a", "--concurrency", "8")
	c.worker("b", "--concurrency", "8")
	const steps = "SELECT count(*) FROM records WHERE type = 'step_completed'"
	var report []string
	for _, r := range []struct {
		mode  string
		pause time.Duration
	}{{"fast", 0}, {"immediate", 0}, {"immediate", 2500 * time.Millisecond}} {
		at := c.count(steps)
		c.waitFor("steps to complete", 30*time.Second, func() bool { return c.count(steps) >= at+4 })
		start := time.Now()
		pg.Restart(t, r.mode, r.pause)
		report = append(report, fmt.Sprintf("%s with %d steps completed, %.1fs down", r.mode, c.count(steps), time.Since(start).Seconds()))
	}
	c.waitFor("every run to complete", 90*time.Second, func() bool { return c.count(completedRuns) == len(runs) })
	audit := c.check()
	if n := c.count(steps); n != len(runs)*4 {
		t.Errorf("%d steps completed, want %d (one each)", n, len(runs)*4)
	}
	if audit.Takeovers != 0 {
		t.Errorf("%d takeovers after restarts of the server", audit.Takeovers)
	}
	t.Logf("restarts: %s; %d runs completed, %d takeovers, %d leases taken, %d interrupted steps run again, %d completed steps re-run, %d gaps",
		strings.Join(report, "; "), len(runs), audit.Takeovers, audit.Claims, audit.Interrupted, audit.CompletedRerun, audit.Gaps)
}
