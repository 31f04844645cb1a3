//go:build integration

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/12fa/12fa/internal/pgtest"
	"github.com/12fa/12fa/internal/testutil"
)

// bin is the 12fa binary under test, built once for the package.
var bin string

// cacheDir is a compile cache shared by the tests' processes.
var cacheDir string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "12fa-e2e-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(tmp, "12fa")
	cacheDir = filepath.Join(tmp, "cache")
	build := exec.Command("go", "build", "-o", bin, "../cmd/12fa")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build 12fa:", err)
		os.Exit(1)
	}
	code := pgtest.Main(m, testutil.MainWithSummary)
	os.RemoveAll(tmp)
	os.Exit(code)
}

// examples is the directory of the example plugins.
func examples(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("../plugins/examples")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
