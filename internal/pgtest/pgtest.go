// Package pgtest gives tests a real PostgreSQL database: the server named
// by $TWELVEFA_TEST_PG, or a throwaway cluster this test binary starts from
// the Debian package's binaries (as the postgres user when run as root,
// which the server refuses to be), stopped when the binary ends. Without
// either, a test skips and says so; with testutil.RequireToolsEnv set (CI)
// it fails instead. No mock of the database is offered.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/12fa/12fa/internal/testutil"
)

// Env names a server to use instead of starting one:
// postgres://user@host:port/db?sslmode=disable. Each test gets a database
// of its own on it.
const Env = "TWELVEFA_TEST_PG"

var (
	once    sync.Once
	server  string // the base URL, database "postgres"
	why     string // why there is none
	cluster *pgCluster
)

type pgCluster struct {
	dir, bin string
	cred     *syscall.Credential
	// opts are the server's options (its port among them).
	opts string
}

// Main runs m through run (testutil.MainWithSummary, say), then stops the
// cluster it started, if any. A test package that uses pgtest calls it
// from its TestMain.
func Main(m *testing.M, run func(*testing.M) int) int {
	code := run(m)
	if cluster != nil {
		cluster.stop()
	}
	return code
}

// URL returns the URL of a new, empty database for t, dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if server == "" {
		if os.Getenv(testutil.RequireToolsEnv) != "" {
			t.Fatalf("PostgreSQL is needed: %s, and %s is set", why, testutil.RequireToolsEnv)
		}
		testutil.NoteSkipped(t.Name()+" [postgres]", why)
		t.Skipf("skipped: %s", why)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to %s: %v", server, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, _ := url.Parse(server)
	u.Path = "/" + name
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return u.String()
}

func setup() {
	if s := os.Getenv(Env); s != "" {
		u, err := url.Parse(s)
		if err != nil {
			why = fmt.Sprintf("$%s: %v", Env, err)
			return
		}
		u.Path = "/postgres"
		server = u.String()
		return
	}
	bin := binDir()
	if bin == "" {
		why = "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb; apt-get install postgresql), and $" + Env + " is not set"
		return
	}
	c, url, err := start(bin)
	if err != nil {
		why = "could not start a throwaway PostgreSQL: " + err.Error()
		return
	}
	cluster, server = c, url
}

// binDir is the newest installed server's bin directory.
func binDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// start makes a cluster in a temporary directory on a free loopback port
// and starts it, as the postgres user when this process is root.
func start(bin string) (*pgCluster, string, error) {
	dir, err := os.MkdirTemp("", "pg12fa-")
	if err != nil {
		return nil, "", err
	}
	c := &pgCluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "", fmt.Errorf("running as root, and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, "", err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, "", err
	}
	run := c.run
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		c.remove()
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		c.remove()
		return nil, "", err
	}
	c.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200", port, dir)
	if err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "pg.log"), "-w", "-t", "30", "-o", c.opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "pg.log"))
		c.remove()
		return nil, "", fmt.Errorf("%v; log: %s", err, strings.TrimSpace(string(log)))
	}
	return c, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
}

// run runs one of the server's programs, as the server's user.
func (c *pgCluster) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Cluster is a throwaway PostgreSQL of one test's own, which the test may
// stop and restart (a server named by $TWELVEFA_TEST_PG cannot be: the
// test then needs the server binaries).
type Cluster struct {
	c *pgCluster
	// URL is its database.
	URL string
}

// NewCluster starts a cluster for t, stopped and removed when t ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := binDir()
	if bin == "" {
		why := "no PostgreSQL server binaries to start a cluster of the test's own (/usr/lib/postgresql/*/bin; apt-get install postgresql)"
		if os.Getenv(testutil.RequireToolsEnv) != "" {
			t.Fatalf("%s, and %s is set", why, testutil.RequireToolsEnv)
		}
		testutil.NoteSkipped(t.Name()+" [postgres]", why)
		t.Skipf("skipped: %s", why)
	}
	c, url, err := start(bin)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(c.stop)
	return &Cluster{c: c, URL: url}
}

// Restart stops the server in mode (fast: clients disconnected, a
// checkpoint; immediate: as a crash, recovered from the WAL at start),
// waits pause, and starts it again on the same port.
func (c *Cluster) Restart(t testing.TB, mode string, pause time.Duration) {
	t.Helper()
	data := filepath.Join(c.c.dir, "data")
	if err := c.c.run("pg_ctl", "-D", data, "-m", mode, "-w", "-t", "30", "stop"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	if err := c.c.run("pg_ctl", "-D", data, "-l", filepath.Join(c.c.dir, "pg.log"), "-w", "-t", "30", "-o", c.c.opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.c.dir, "pg.log"))
		t.Fatalf("%v; log: %s", err, log)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stop shuts the cluster down fast (SIGINT to the postmaster) and removes
// its directory.
func (c *pgCluster) stop() {
	pid, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid"))
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pid), "\n", 2)[0])); err == nil {
			if p, err := os.FindProcess(n); err == nil {
				_ = p.Signal(syscall.SIGINT)
				for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
					if err := p.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) || err != nil {
						break
					}
				}
			}
		}
	}
	c.remove()
}

func (c *pgCluster) remove() { _ = os.RemoveAll(c.dir) }
