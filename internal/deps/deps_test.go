package deps_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/12fa/12fa/internal/testutil"
)

const module = "github.com/12fa/12fa/"

// allowed lists, for each package of ours, the packages of ours it may
// import (non-test files). Packages not listed may import only abi.
var allowed = map[string][]string{
	"abi":      {},
	"runtime":  {"abi", "host", "state", "manifest", "checkpoint", "inputs", "notify", "progress", "features", "egress", "command"},
	"manifest": {"abi", "egress", "command"},
	"cmd/12fa": {"runtime", "manifest", "state", "inputs", "progress", "features", "abi", "pdk", "internal/bench", "pgstore", "worker", "serve", "notify"},
	"serve":    {"runtime", "state", "inputs", "progress", "features", "notify"},
	// The benchmarks drive the engine as a user would.
	"internal/bench": {"runtime", "manifest", "state", "pgstore", "worker", "serve"},
	// The store conformance suite, for tests of stores.
	"state/statetest": {"state"},
	// The PostgreSQL store.
	"pgstore": {"state", "abi", "inputs", "progress"},
	// Workers on the PostgreSQL store.
	"worker": {"runtime", "pgstore", "manifest", "state"},
	// The test helper that starts a PostgreSQL.
	"internal/pgtest": {"internal/testutil"},
}

func TestImportDirection(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = testutil.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if strings.HasPrefix(pkg, "tests") {
			continue
		}
		seen++
		ok := map[string]bool{"abi": true}
		if list, found := allowed[pkg]; found {
			ok = map[string]bool{}
			for _, p := range list {
				ok[p] = true
			}
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if strings.HasPrefix(dep, "internal/") && dep != "internal/testutil" && dep != "internal/bench" {
				continue // shared internal helpers, leaves but for abi
			}
			if !ok[dep] {
				t.Errorf("%s imports %s: imports point down only (cmd -> runtime -> host/state/manifest/… -> abi)", pkg, dep)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list saw only %d packages; is the test running in the module?", seen)
	}
}
