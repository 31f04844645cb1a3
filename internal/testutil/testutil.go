// Package testutil holds helpers shared by 12fa's tests.
package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot returns the repository's root directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("testutil: cannot find the repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ExamplePath returns the path of a file under plugins/examples.
func ExamplePath(tb testing.TB, rel string) string {
	tb.Helper()
	return filepath.Join(RepoRoot(tb), "plugins", "examples", filepath.FromSlash(rel))
}

// MustReadExample reads a built example plugin, e.g. "wat/noop.wasm" or
// "effect/effect.wasm".
func MustReadExample(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(ExamplePath(tb, rel))
	if err != nil {
		tb.Fatalf("read example plugin (run 'make wasm'?): %v", err)
	}
	return b
}

// MainWithTempDir runs a package's tests with *dir set to a fresh temporary
// directory (for example a compile cache shared by the package's tests),
// removed afterwards. Call it from TestMain and pass its result to os.Exit.
func MainWithTempDir(m *testing.M, pattern string, dir *string) int {
	d, err := os.MkdirTemp("", pattern)
	if err != nil {
		panic(err)
	}
	*dir = d
	defer os.RemoveAll(d)
	return MainWithSummary(m)
}
