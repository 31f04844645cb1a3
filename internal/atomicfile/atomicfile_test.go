package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/12fa/12fa/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.json")
	for _, content := range []string{"one", "two"} {
		if err := atomicfile.Write(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != content {
			t.Fatalf("content %q", b)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}
