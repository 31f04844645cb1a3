//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHostile_NoNetworkNoEnvironment: a step with no grants cannot reach a
// server listening on loopback, sees none of the host's environment, and
// finds no files; the run itself completes.
func TestHostile_NoNetworkNoEnvironment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	project := t.TempDir()
	manifest := filepath.Join(project, "probe.toml")
	body := fmt.Sprintf(`[workflow]
name = "probe"
[[step]]
id = "probe"
plugin = %q
memory = "32MiB"
input = { ops = [
  { op = "dial", path = %q },
  { op = "env" },
  { op = "read", path = "/etc/passwd" },
  { op = "list", path = "/" },
] }
`, filepath.Join(examples(t), "fsprobe", "fsprobe.wasm"), ln.Addr().String())
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-C", project, "--cache-dir", cacheDir, "run", "--json", manifest)
	cmd.Env = append(os.Environ(), "TWELVEFA_SECRET=hunter2")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var res struct {
		Status string `json:"status"`
		Steps  []struct {
			Output struct {
				Results []struct {
					OK   bool   `json:"ok"`
					Data string `json:"data"`
					Err  string `json:"err"`
				} `json:"results"`
			} `json:"output"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := res.Steps[0].Output.Results
	if res.Status != "completed" || len(r) != 4 {
		t.Fatalf("result: %s", out)
	}
	if r[0].OK || r[0].Data == "connected" {
		t.Errorf("the step reached a loopback server: %+v", r[0])
	}
	if r[1].Data != "" || strings.Contains(string(out), "hunter2") {
		t.Errorf("the step saw environment variables: %q", r[1].Data)
	}
	if r[2].OK || r[3].OK {
		t.Errorf("the step saw files without a grant: %+v %+v", r[2], r[3])
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback server accepted %d connections", n)
	}
	t.Logf("dial: %s", r[0].Err)
}
