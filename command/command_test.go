package command

import (
	"bytes"
	"io"
	"testing"
)

// TestCapped: output is cut at the cap however it is copied in (io.Copy
// would bypass Write for a writer with ReadFrom).
func TestCapped(t *testing.T) {
	c := &capped{max: 10}
	if _, err := io.Copy(c, bytes.NewReader(bytes.Repeat([]byte("x"), 1000))); err != nil {
		t.Fatal(err)
	}
	if c.String() != "xxxxxxxxxx" || !c.cut {
		t.Errorf("kept %q, cut %v", c.String(), c.cut)
	}
}

func TestGuard(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"git", []string{"status"}, true},
		{"git", []string{"log", "--oneline", "-n", "3"}, true},
		{"git", []string{"-c", "x=y", "status"}, false},
		{"git", []string{"commit", "-cHEAD"}, false},
		{"git", []string{"fetch", "--upload-pack", "x"}, false},
		{"git", []string{"clone", "EXT::sh -c x", "d"}, false},
		{"git", []string{"--git-dir=/x", "status"}, false},
		{"go", []string{"test", "./..."}, true},
		{"go", []string{"test", "-exec", "sh"}, false},
		{"go", []string{"vet", "-toolexec=sh"}, false},
		{"make", []string{"-j4"}, true},
	} {
		if _, err := guard(tc.name, tc.args); (err == nil) != tc.ok {
			t.Errorf("%s %q: %v, want ok %v", tc.name, tc.args, err, tc.ok)
		}
	}
	if args, _ := guard("git", []string{"status"}); args[len(args)-1] != "status" || args[0] != "-c" {
		t.Errorf("git argv %q", args)
	}
	for name, risky := range map[string]bool{"LD_PRELOAD": true, "GIT_SSH_COMMAND": true, "GOFLAGS": true, "HOME": false, "GOCACHE": false, "NODE_OPTIONS": true} {
		if RiskyEnv(name) != risky {
			t.Errorf("RiskyEnv(%s) = %v", name, !risky)
		}
	}
}
