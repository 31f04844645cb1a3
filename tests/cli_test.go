//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/12fa/12fa/internal/testutil"
)

// TestCLI runs the scripts in testdata/*.txtar against the built binary.
// Each script's $WORK has the example plugins under plugins/ and
// $EXAMPLES points at plugins/examples.
func TestCLI(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// 12fa-respond-all ANSWER answers every pending question: ANSWER
			// to those with options, "v1.2" to the others. Output and errors
			// of each `12fa respond` go to the script's stdout and stderr.
			"12fa-respond-all": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: 12fa-respond-all ANSWER")
				}
				out, err := exec.Command(bin, "-C", ts.Getenv("WORK"), "inputs", "--all", "--json").Output()
				ts.Check(err)
				var qs struct {
					Questions []struct {
						ID      string   `json:"id"`
						Options []string `json:"options"`
					} `json:"questions"`
				}
				ts.Check(json.Unmarshal(out, &qs))
				for _, q := range qs.Questions {
					answer := "v1.2"
					if len(q.Options) > 0 {
						answer = args[0]
					}
					cmd := exec.Command(bin, "-C", ts.Getenv("WORK"), "respond", q.ID, answer)
					cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
					_ = cmd.Run() // the script checks what it printed
				}
			},
			// 12fa-show-file PATH prints PATH as recorded by the newest
			// checkpoint of the first step (refs/12fa/*/write).
			"12fa-show-file": func(ts *testscript.TestScript, neg bool, args []string) {
				out, err := exec.Command("git", "-C", ts.Getenv("WORK"), "for-each-ref", "--format=%(refname)", "refs/12fa/").Output()
				ts.Check(err)
				for _, ref := range strings.Fields(string(out)) {
					if strings.HasSuffix(ref, "/write") {
						b, err := exec.Command("git", "-C", ts.Getenv("WORK"), "show", ref+":"+args[0]).Output()
						ts.Check(err)
						ts.Stdout().Write(b)
						return
					}
				}
				ts.Fatalf("no checkpoint of step write")
			},
			// 12fa-checkpoint-id STEP sets $CKPT to the id of the newest
			// checkpoint of STEP.
			"12fa-checkpoint-id": func(ts *testscript.TestScript, neg bool, args []string) {
				out, err := exec.Command(bin, "-C", ts.Getenv("WORK"), "checkpoints", "--json").Output()
				ts.Check(err)
				var cps struct {
					Checkpoints []struct{ ID, Step string } `json:"checkpoints"`
				}
				ts.Check(json.Unmarshal(out, &cps))
				for _, cp := range cps.Checkpoints {
					if cp.Step == args[0] {
						ts.Setenv("CKPT", cp.ID)
					}
				}
			},
			// 12fa-run-id sets $RUN to the newest run's id.
			"12fa-run-id": func(ts *testscript.TestScript, neg bool, args []string) {
				out, err := exec.Command(bin, "-C", ts.Getenv("WORK"), "status", "--json").Output()
				ts.Check(err)
				var st struct {
					Runs []struct{ ID string } `json:"runs"`
				}
				ts.Check(json.Unmarshal(out, &st))
				ts.Setenv("RUN", st.Runs[len(st.Runs)-1].ID)
			},
			// 12fa-file-size FILE MAX fails when FILE is larger than MAX
			// bytes, and prints its size.
			"12fa-file-size": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: 12fa-file-size FILE MAX")
				}
				st, err := os.Stat(ts.MkAbs(args[0]))
				ts.Check(err)
				limit, err := strconv.ParseInt(args[1], 10, 64)
				ts.Check(err)
				fmt.Fprintf(ts.Stdout(), "%s: %d bytes\n", args[0], st.Size())
				if st.Size() > limit {
					ts.Fatalf("%s is %d bytes, more than %d", args[0], st.Size(), limit)
				}
			},
			// expand SRC DST copies SRC to DST with $VARS expanded.
			"expand": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: expand SRC DST")
				}
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(os.Expand(ts.ReadFile(args[0]), ts.Getenv)), 0o644))
			},
		},
		// [tool:NAME] holds when a tool the script needs is installed (see
		// testutil.MissingTool); a script skips without it, and fails when
		// TWELVEFA_REQUIRE_TOOLS is set.
		Condition: func(cond string) (bool, error) {
			name, ok := strings.CutPrefix(cond, "tool:")
			if !ok {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			return testutil.ToolCondition("TestCLI", name)
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("EXAMPLES", examples(t))
			env.Setenv("REPO", filepath.Dir(filepath.Dir(examples(t))))
			// Scripts that build Go steps share the Go caches of the test.
			if out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output(); err == nil {
				if v := strings.Fields(string(out)); len(v) == 3 {
					env.Setenv("GOCACHE", v[0])
					env.Setenv("GOMODCACHE", v[1])
					env.Setenv("GOPATH", v[2])
				}
			}
			env.Setenv("XDG_CACHE_HOME", filepath.Join(cacheDir, "xdg"))
			// Plugins built by Extism's own PDKs: extism/go-sdk's wasm/
			// folder (a test-only dependency in go.mod).
			out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/extism/go-sdk").Output()
			if err != nil {
				return fmt.Errorf("go list extism/go-sdk: %w", err)
			}
			env.Setenv("EXTISM_WASM", filepath.Join(strings.TrimSpace(string(out)), "wasm"))
			dst := filepath.Join(env.WorkDir, "plugins")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			for _, p := range []string{"effect/effect.wasm", "gopanic/gopanic.wasm", "wat/noop.wasm", "wat/loop.wasm",
				"wat/grow.wasm", "wat/trap.wasm", "wat/badptr.wasm", "wat/badjson.wasm", "wat/bigoutput.wasm",
				"wat/logflood.wasm", "wat/abiv2.wasm", "wat/fail.wasm", "wat/binout.wasm", "wat/fill.wasm", "fsprobe/fsprobe.wasm", "ask/ask.wasm",
				"js-greet/greet.js", "fetch/fetch.wasm"} {
				b, err := os.ReadFile(filepath.Join(examples(t), p))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	})
}
