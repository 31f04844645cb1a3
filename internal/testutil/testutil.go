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
