package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/12fa/12fa/manifest"
)

func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "step.wasm"), []byte("\x00asm"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "plugin-manifest.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad_AppliesDefaults(t *testing.T) {
	p := write(t, `
[workflow]
name = "demo"

[defaults]
timeout = "5s"
memory = "32MiB"
retry = { max_attempts = 5, initial_interval = "1s" }
non_retryable = ["quota"]
on_failure = "fail"

[[step]]
id = "a"
plugin = "step.wasm"
input = { goal = "x", n = 3 }
config = { model = "small" }

[[step]]
id = "b"
plugin = "step.wasm"
timeout = "1m"
memory = "1MiB"
idempotent = true
allow = { paths = { "./data" = "/data" }, write_paths = { "./out" = "/out" } }
`)
	m, err := manifest.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Steps[0], m.Steps[1]
	if time.Duration(a.Timeout) != 5*time.Second || a.Memory != 32<<20 || a.MemoryPages() != 512 {
		t.Fatalf("step a: timeout %v memory %d", time.Duration(a.Timeout), a.Memory)
	}
	if string(a.InputJSON) != `{"goal":"x","n":3}` || a.Config["model"] != "small" {
		t.Fatalf("step a: input %s config %v", a.InputJSON, a.Config)
	}
	if time.Duration(b.Timeout) != time.Minute || b.MemoryPages() != 16 || !b.Idempotent {
		t.Fatalf("step b: %+v", b)
	}
	if a.Retry.MaxAttempts != 5 || time.Duration(a.Retry.InitialInterval) != time.Second || a.Retry.Backoff != 2 ||
		a.OnFailure != "fail" || len(a.NonRetryable) != 1 {
		t.Fatalf("step a policy: %+v %v %v", *a.Retry, a.OnFailure, a.NonRetryable)
	}
	if got := a.Retry.Delay(3); got != 4*time.Second {
		t.Fatalf("third delay = %s, want 4s", got)
	}
	if b.Allow.Paths["./data"] != "/data" || b.Allow.WritePaths["./out"] != "/out" {
		t.Fatalf("step b allow: %+v", b.Allow)
	}
	if b.PluginPath != filepath.Join(filepath.Dir(p), "step.wasm") || b.Line != 18 {
		t.Fatalf("step b: plugin path %s line %d", b.PluginPath, b.Line)
	}
	if string(b.InputJSON) != "null" {
		t.Fatalf("step b input = %s", b.InputJSON)
	}
}

func TestLoad_Errors(t *testing.T) {
	const head = "[workflow]\nname = \"w\"\n"
	tests := []struct {
		name string
		body string
		want string // substring, after the file name
	}{
		{"unknown key", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\ntimeuot = \"1s\"\n", `:6: invalid manifest: unknown key "step.timeuot"`},
		{"duplicate id", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n", `:7: invalid manifest: step id "a" is used twice`},
		{"missing plugin", head + "[[step]]\nid = \"a\"\nplugin = \"nope.wasm\"\n", `:5: invalid manifest: step "a": plugin nope.wasm does not exist`},
		{"bad duration", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\ntimeout = \"soon\"\n", `:6:`},
		{"bad size", head + "[defaults]\nmemory = \"lots\"\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n", `:4:`},
		{"memory too small", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\nmemory = \"1KiB\"\n", `:6: invalid manifest: step "a": memory must be`},
		{"no steps", head, `invalid manifest: no [[step]] tables`},
		{"no workflow name", "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n", `invalid manifest: [workflow] needs a name`},
		{"bad id", head + "[[step]]\nid = \"a b\"\nplugin = \"step.wasm\"\n", `:4: invalid manifest: step id "a b"`},
		{"syntax", head + "[[step]\n", `:3:`},
		{"bad sha", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\nsha256 = \"abc\"\n", `:6: invalid manifest: step "a": sha256 must be 64 hex digits`},
		{"needs a later step", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\nneeds = [\"b\"]\n[[step]]\nid = \"b\"\nplugin = \"step.wasm\"\n", `:6: invalid manifest: step "a" needs "b", which is not an earlier step`},
		{"bad on_failure", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\non_failure = \"explode\"\n", `:6: invalid manifest: step "a": on_failure must be "pause", "fail" or "rollback", not "explode"`},
		{"bad retry", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\nretry = { max_attempts = 3, jitter = 2.0 }\n", `:6: invalid manifest: step "a": retry: jitter must be between 0 and 1`},
		{"unknown retry key", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\nretry = { attempts = 3 }\n", `:6: invalid manifest: unknown key "step.attempts"`},
		{"input without a question", head + "[[input]]\nkey = \"k\"\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n", `:3: invalid manifest: [[input]] 1 needs a key and a question`},
		{"input default not an option", head + "[[input]]\nkey = \"k\"\nquestion = \"Q?\"\noptions = [\"a\"]\ndefault = \"b\"\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n", `:7: invalid manifest: [[input]] "k": default "b" is not one of the options`},
		{"host with a path", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"https://api.x.com/v1\"]\n", `:7: invalid manifest: step "a": allow.hosts: "https://api.x.com/v1": an origin has no path`},
		{"host mid-label wildcard", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\nallow = { hosts = [\"https://api.*.com\"] }\n", `:6: invalid manifest: step "a": allow.hosts: "https://api.*.com": a host may start with "*."`},
		{"host table without url", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [{ methods = [\"GET\"] }]\n", `:7: invalid manifest: step "a": allow.hosts entry 1 has no url`},
		{"host table unknown key", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [{ url = \"https://x.com\", verbs = [\"GET\"] }]\n", `:7: invalid manifest: step "a": allow.hosts entry 1: unknown key "verbs"`},
		{"host not a string", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [3]\n", `:7: invalid manifest: step "a": allow.hosts entry 1 must be a string`},
		{"bad private", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"http://x.com\"]\nprivate = [\"10.0.0.0/40\"]\n", `:8: invalid manifest: step "a": allow.private: "10.0.0.0/40" is not an address range`},
		{"private without hosts", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nprivate = [\"10.0.0.0/8\"]\n", `:7: invalid manifest: step "a": allow.private grants address ranges, but allow.hosts grants no host`},
		{"http limits without hosts", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhttp = { timeout = \"1s\" }\n", `:7: invalid manifest: step "a": allow.http sets HTTP limits, but allow.hosts grants no host`},
		{"too many redirects", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"http://x.com\"]\nhttp = { redirects = 50 }\n", `:8: invalid manifest: step "a": allow.http.redirects must be from 0 to 20`},
		{"bad default host", head + "[defaults.allow]\nhosts = [\"ftp://x.com\"]\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n", `:4: invalid manifest: step "a": allow.hosts: "ftp://x.com": scheme "ftp" is not http or https`},
		{"secret not declared", head + "[secrets]\nopenai = { env = \"OPENAI_API_KEY\" }\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"https://api.openai.com\"]\n[step.secrets]\n" + "github = { hosts = [\"api.openai.com\"] }\n", `:11: invalid manifest: step "a": secret "github" is not declared in [secrets]`},
		{"secret host not granted", head + "[secrets]\nopenai = { env = \"OPENAI_API_KEY\" }\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"https://api.openai.com\"]\n[step.secrets]\n" + "openai = { hosts = [\"api.evil.com\"], header = \"Authorization\" }\n", `:11: invalid manifest: step "a": secret "openai" may go to https://api.evil.com, which the step's allow.hosts does not grant`},
		{"secret over http", head + "[secrets]\nopenai = { env = \"OPENAI_API_KEY\" }\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"https://api.openai.com\"]\n[step.secrets]\n" + "openai = { hosts = [\"http://api.openai.com\"], header = \"Authorization\" }\n", `:11: invalid manifest: step "a": secret "openai" may go to http://api.openai.com, which`},
		{"secret value without {secret}", head + "[secrets]\nopenai = { env = \"OPENAI_API_KEY\" }\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"https://api.openai.com\"]\n[step.secrets]\n" + "openai = { hosts = [\"api.openai.com\"], header = \"Authorization\", value = \"Bearer\" }\n", `:11: invalid manifest: step "a": secret "openai": value must hold {secret} once`},
		{"secret without hosts", head + "[secrets]\nopenai = { env = \"OPENAI_API_KEY\" }\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n[step.allow]\nhosts = [\"https://api.openai.com\"]\n[step.secrets]\n" + "openai = { header = \"Authorization\" }\n", `:11: invalid manifest: step "a": secret "openai" needs hosts`},
		{"secret without env", head + "[secrets]\nopenai = { }\n[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\n", `:4: invalid manifest: [secrets] "openai" needs env`},
		{"relative guest path", head + "[[step]]\nid = \"a\"\nplugin = \"step.wasm\"\nallow = { paths = { \"d\" = \"data\" } }\n", `:6: invalid manifest: step "a": guest path "data" must be absolute`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, tc.body)
			_, err := manifest.Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			want := tc.want
			if strings.HasPrefix(want, ":") {
				want = p + want // a line number right after the file name
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %q, want %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("err = %q does not start with the file name", err)
			}
			if !errors.Is(err, manifest.ErrInvalid) && !strings.Contains(err.Error(), "invalid manifest") {
				t.Fatalf("err = %v is not ErrInvalid", err)
			}
		})
	}
}

// TestLoad_NetworkGrants: a step's allow.hosts, private and http are
// parsed; [defaults.allow] applies to a step without its own.
func TestLoad_NetworkGrants(t *testing.T) {
	p := write(t, `[workflow]
name = "w"
[defaults.allow]
hosts = ["https://api.default.com"]
[[step]]
id = "own"
plugin = "step.wasm"
[step.allow]
hosts = ["https://api.openai.com", { url = "https://*.example.com:8443", methods = ["get"] }]
private = ["10.1.2.0/24", "127.0.0.1"]
http = { max_response = "1MiB", timeout = "5s", redirects = 0 }
[[step]]
id = "inherits"
plugin = "step.wasm"
`)
	m, err := manifest.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	own, inh := m.Steps[0], m.Steps[1]
	var got []string
	for _, o := range own.Allow.Origins {
		got = append(got, o.String())
	}
	if strings.Join(got, " | ") != "https://api.openai.com | https://*.example.com:8443 (GET)" {
		t.Errorf("origins: %q", got)
	}
	if len(own.Allow.PrivateNets) != 2 || own.Allow.PrivateNets[1].String() != "127.0.0.1/32" {
		t.Errorf("private: %v", own.Allow.PrivateNets)
	}
	pol := own.Policy(func(string) string { return "" })
	if pol.Limits.MaxResponseBytes != 1<<20 || pol.Limits.Timeout != 5*time.Second || !pol.NoRedirects {
		t.Errorf("policy limits: %+v, no redirects %v", pol.Limits, pol.NoRedirects)
	}
	if len(inh.Allow.Origins) != 1 || inh.Allow.Origins[0].String() != "https://api.default.com" {
		t.Errorf("inherited origins: %v", inh.Allow.Origins)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[workflow]\nname = \"w\"\n[[step]]\nid = \"a\"\nplugin = \"x.wasm\"\n"))
	f.Add([]byte("[defaults]\ntimeout = \"1s\"\nmemory = \"1MiB\"\n"))
	f.Add([]byte("[[step]]\ninput = { a = [1, 2, { b = 3 }] }\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = manifest.Parse("fuzz.toml", filepath.Join(t.TempDir(), "fuzz.toml"), b)
	})
}
