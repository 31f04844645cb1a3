package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// RequireToolsEnv names the variable that turns a skip for a missing tool
// into a failure. `make test` passes on a machine with only Go, skipping
// what needs a guest toolchain; .ci/run installs every toolchain and sets
// it, so that CI proves them all.
const RequireToolsEnv = "TWELVEFA_REQUIRE_TOOLS"

// tools says, for each tool a test may need, what makes it present: commands
// on PATH and files.
var tools = map[string]struct {
	commands, files []string
	install         string
}{
	"git":  {commands: []string{"git"}, install: "apt-get install git"},
	"wat":  {commands: []string{"wat2wasm"}, install: "apt-get install wabt"},
	"npm":  {commands: []string{"npm"}, install: "apt-get install npm"},
	"c":    {commands: []string{"clang", "wasm-ld"}, files: []string{"/usr/lib/wasm32-wasi/libc.a"}, install: "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"},
	"rust": {files: []string{"/usr/bin/rustc", "/usr/lib/rustlib/wasm32-wasi"}, install: "apt-get install rustc libstd-rust-dev-wasm32"},
	// A headless browser, for the dashboard's browser test.
	"chromium": {commands: []string{"chromium-headless-shell"}, install: "apt-get install --no-install-recommends chromium-headless-shell"},
}

// MissingTool says what of tool is missing on this machine ("" when
// nothing is). It panics for a tool it does not know.
func MissingTool(tool string) string {
	t, ok := tools[tool]
	if !ok {
		panic("testutil: unknown tool " + tool)
	}
	var missing []string
	for _, c := range t.commands {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	for _, f := range t.files {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("%s not found (%s)", strings.Join(missing, ", "), t.install)
}

var (
	skippedMu sync.Mutex
	skipped   = map[string]string{}
)

// ToolCondition is for testscript's Condition: it reports whether tool is
// present, noting what is skipped for its absence (SkippedSummary), and
// fails when RequireToolsEnv is set.
func ToolCondition(script, tool string) (bool, error) {
	missing := MissingTool(tool)
	if missing == "" {
		return true, nil
	}
	if os.Getenv(RequireToolsEnv) != "" {
		return false, fmt.Errorf("%s needs %s: %s, and %s is set", script, tool, missing, RequireToolsEnv)
	}
	skippedMu.Lock()
	skipped[script+" ["+tool+"]"] = missing
	skippedMu.Unlock()
	return false, nil
}

// NoteSkipped records that name was skipped for why, for SkippedSummary
// (helpers that find a tool their own way, such as internal/pgtest).
func NoteSkipped(name, why string) {
	skippedMu.Lock()
	skipped[name] = why
	skippedMu.Unlock()
}

// NeedTool skips tb when tool is missing, saying why, or fails it when
// RequireToolsEnv is set.
func NeedTool(tb testing.TB, tool string) {
	tb.Helper()
	ok, err := ToolCondition(tb.Name(), tool)
	if err != nil {
		tb.Fatal(err)
	}
	if !ok {
		tb.Skipf("skipped: %s", MissingTool(tool))
	}
}

// SkippedSummary lists what was skipped for missing tools, one line each,
// for a package's TestMain to print after its tests ran.
func SkippedSummary() string {
	skippedMu.Lock()
	defer skippedMu.Unlock()
	if len(skipped) == 0 {
		return ""
	}
	var lines []string
	for name, why := range skipped {
		lines = append(lines, fmt.Sprintf("  %s: %s", name, why))
	}
	sort.Strings(lines)
	return fmt.Sprintf("skipped for missing tools (%s=1 makes these failures):\n%s\n", RequireToolsEnv, strings.Join(lines, "\n"))
}

// SkipLogEnv names a file that MainWithSummary appends its summary to
// (`make test` prints it at the end: go test hides a passing package's
// output); without it the summary goes to stderr.
const SkipLogEnv = "TWELVEFA_SKIP_LOG"

// MainWithSummary runs m and reports SkippedSummary.
func MainWithSummary(m *testing.M) int {
	code := m.Run()
	s := SkippedSummary()
	if s == "" {
		return code
	}
	s = filepath.Base(os.Args[0]) + ": " + s
	if path := os.Getenv(SkipLogEnv); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			_, _ = f.WriteString(s)
			_ = f.Close()
			return code
		}
	}
	fmt.Fprint(os.Stderr, s)
	return code
}
