// Package manifest reads 12fa workflow manifests (plugin-manifest.toml).
//
// Decoding is strict: an unknown key, a duplicate step id, a bad duration or
// size, or a plugin file that does not exist is an error that names the file
// and line. Paths in a manifest are relative to the manifest's directory.
//
// manifest imports only the standard library and go-toml; runtime uses it.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/pelletier/go-toml/v2"

	"github.com/12fa/12fa/command"
	"github.com/12fa/12fa/egress"
	"github.com/12fa/12fa/internal/jsonenc"
)

// Defaults that apply when neither the step nor [defaults] sets a value.
const (
	DefaultTimeout = 30 * time.Second
	DefaultMemory  = 64 << 20
	// MaxMemory is the largest memory cap a step may ask for (4 GiB, the
	// 32-bit Wasm limit).
	MaxMemory = 4 << 30
)

// Input modes (a step's input_mode).
const (
	// InputEnvelope: the plugin gets the envelope (abi.Envelope) as JSON.
	InputEnvelope = "envelope"
	// InputRaw: the plugin gets the step's input itself, as any Extism
	// plugin expects: a string as its bytes, any other value as JSON,
	// nothing when there is none.
	InputRaw = "raw"
)

// ErrInvalid is wrapped by every error about the content of a manifest.
var ErrInvalid = errors.New("invalid manifest")

// Manifest is a parsed, validated workflow.
type Manifest struct {
	// Path is the manifest file, absolute.
	Path string
	// Dir is the manifest's directory, absolute; plugin paths are relative
	// to it.
	Dir        string
	Workflow   Workflow
	Defaults   Defaults
	Notify     Notify
	Checkpoint Checkpoint
	Inputs     []Input
	Steps      []Step
	// Secrets names where each secret's value comes from.
	Secrets map[string]SecretSource
}

// SecretSource is an entry of [secrets]: where a secret's value is read
// from when a process loads the workflow. It is never stored.
type SecretSource struct {
	// Env names the host's environment variable holding it.
	Env string `toml:"env"`
}

// SecretGrant is an entry of a step's secrets table: where the secret may
// go. The host sets Header to Value (its "{secret}" replaced by the
// secret) on every request to Hosts; a header value of the step's own may
// name it as {{secret.NAME}} instead. The step never holds the value.
type SecretGrant struct {
	// Hosts are origins ("https://api.openai.com", or a bare host name for
	// https) within the step's allow.hosts.
	Hosts  []string `toml:"hosts"`
	Header string   `toml:"header"`
	Value  string   `toml:"value"`

	// Origins are Hosts parsed; Env is the variable of [secrets].
	Origins []egress.Origin `toml:"-"`
	Env     string          `toml:"-"`
}

// Workflow is the [workflow] table.
type Workflow struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
}

// Defaults is the [defaults] table.
type Defaults struct {
	Timeout      Duration `toml:"timeout"`
	TotalTimeout Duration `toml:"total_timeout"`
	Memory       Size     `toml:"memory"`
	MaxOutput    Size     `toml:"max_output"`
	Retry        *Retry   `toml:"retry"`
	NonRetryable []string `toml:"non_retryable"`
	OnFailure    string   `toml:"on_failure"`
	// Allow holds network grants (hosts, private, http) that every step
	// without its own gets; file grants are per step only.
	Allow DefaultAllow `toml:"allow"`
}

// DefaultAllow is the [defaults.allow] table.
type DefaultAllow struct {
	Hosts   []any       `toml:"hosts"`
	Private []string    `toml:"private"`
	HTTP    *HTTPLimits `toml:"http"`
}

// Retry is a step's retry policy. Attempts are spaced by an exponential
// backoff: initial_interval × backoff^(n-1), capped at max_interval, each
// moved by up to ±jitter of itself.
type Retry struct {
	// MaxAttempts counts every attempt, the first included (1: no retry).
	MaxAttempts     int      `toml:"max_attempts"`
	InitialInterval Duration `toml:"initial_interval"`
	Backoff         float64  `toml:"backoff"`
	MaxInterval     Duration `toml:"max_interval"`
	Jitter          float64  `toml:"jitter"`
	// NonIdempotent retries a step that is not idempotent too; by default
	// only idempotent steps are retried.
	NonIdempotent bool `toml:"non_idempotent"`
}

// Retry defaults, for fields a policy leaves out.
const (
	DefaultMaxAttempts     = 3
	DefaultInitialInterval = 500 * time.Millisecond
	DefaultBackoff         = 2.0
	DefaultMaxInterval     = 30 * time.Second
	DefaultJitter          = 0.2
)

// What a step does when it fails for good (Step.OnFailure).
const (
	// OnFailurePause keeps the run resumable: resume tries the step again.
	OnFailurePause = "pause"
	// OnFailureFail ends the run failed; resume --retry-failed restarts it.
	OnFailureFail = "fail"
	// OnFailureRollback undoes the run (saga): the failed step's rollback,
	// then those of the completed steps in reverse order.
	OnFailureRollback = "rollback"
)

// Step is one [[step]] table with defaults applied.
type Step struct {
	ID          string            `toml:"id"`
	Name        string            `toml:"name"`
	Description string            `toml:"description"`
	Plugin      string            `toml:"plugin"`
	SHA256      string            `toml:"sha256"`
	Function    string            `toml:"function"`
	Input       any               `toml:"input"`
	Config      map[string]string `toml:"config"`
	Idempotent  bool              `toml:"idempotent"`
	// Secrets grants secrets of [secrets] for some of the step's hosts.
	Secrets map[string]SecretGrant `toml:"secrets"`
	// Needs lists the earlier steps whose outputs the step's envelope
	// carries. Nil (the key absent) means every earlier step.
	Needs   *[]string `toml:"needs"`
	Timeout Duration  `toml:"timeout"`
	// TotalTimeout bounds all attempts of the step, backoff included.
	TotalTimeout Duration `toml:"total_timeout"`
	Memory       Size     `toml:"memory"`
	MaxOutput    Size     `toml:"max_output"`
	Allow        Allow    `toml:"allow"`
	Retry        *Retry   `toml:"retry"`
	// NonRetryable lists error codes (the code of a plugin's error
	// document) that are never retried; [defaults] adds its own.
	NonRetryable []string `toml:"non_retryable"`
	// OnFailure is "pause" (default), "fail" or "rollback".
	OnFailure string `toml:"on_failure"`
	// Rollback names an export of the same plugin that undoes the step; it
	// is called when the run rolls back. It must be safe to call twice.
	Rollback string `toml:"rollback"`
	// InputMode is what the plugin gets as its Extism input: InputEnvelope
	// (default) or InputRaw.
	InputMode string `toml:"input_mode"`

	// PluginPath is Plugin resolved against the manifest's directory.
	PluginPath string `toml:"-"`
	// InputJSON is Input encoded as JSON ("null" when absent).
	InputJSON json.RawMessage `toml:"-"`
	// Line is where the step's table starts.
	Line int `toml:"-"`
}

// Allow lists what a step is granted beyond the default nothing.
type Allow struct {
	// Paths maps host directories (relative to the manifest) to guest paths,
	// read-only.
	Paths map[string]string `toml:"paths"`
	// WritePaths maps host directories to guest paths, read-write.
	WritePaths map[string]string `toml:"write_paths"`
	// Hosts lists the origins the step may send HTTP requests to, each a
	// string ("https://api.example.com", "https://*.example.com:8443") or a
	// table { url = "…", methods = ["GET"] }. Nothing else is reachable.
	Hosts []any `toml:"hosts"`
	// Private lists the address ranges ("10.1.2.0/24", "127.0.0.1") the
	// step may dial although they are not public (loopback, private,
	// link-local; a metadata address only by its exact address).
	Private []string `toml:"private"`
	// HTTP sets the step's HTTP limits.
	HTTP *HTTPLimits `toml:"http"`
	// Commands lists the programs the step may run (outside the sandbox,
	// with the user's rights), each a name found on PATH ("go") or a table
	// { name = "git", idempotent = true }.
	Commands []any `toml:"commands"`
	// Env names the environment variables a command gets (never the
	// host's whole environment); UnsafeEnv acknowledges names that make a
	// command run something else (LD_*, GIT_*, GOFLAGS …).
	Env       []string `toml:"env"`
	UnsafeEnv bool     `toml:"unsafe_env"`

	// Origins and PrivateNets are Hosts and Private parsed; Resolved is
	// Commands with their paths, resolved at load.
	Origins     []egress.Origin   `toml:"-"`
	PrivateNets []netip.Prefix    `toml:"-"`
	Resolved    []command.Command `toml:"-"`
}

// HTTPLimits is a step's allow.http table; unset fields keep the defaults.
type HTTPLimits struct {
	// MaxResponse bounds a response body (default 8MiB, at most 32MiB).
	MaxResponse Size `toml:"max_response"`
	// Timeout bounds one request with its redirects and body (default 30s;
	// the attempt's timeout bounds it too).
	Timeout Duration `toml:"timeout"`
	// StallTimeout fails a request that gets no byte for this long
	// (default 10s).
	StallTimeout Duration `toml:"stall_timeout"`
	// MaxRequests bounds the requests of one attempt (default 64).
	MaxRequests int `toml:"max_requests"`
	// Redirects bounds the redirects followed (default 5, at most 20; 0
	// returns a redirect to the step instead).
	Redirects *int `toml:"redirects"`
	// IdempotencyKey adds an Idempotency-Key header to each request that
	// has none, the same for the same call of the step in every attempt
	// (derived from the run, the step and the call's sequence number).
	IdempotencyKey bool `toml:"idempotency_key"`
}

// Policy returns the step's HTTP grants as egress takes them, with the
// values of its secrets read through getenv (os.Getenv).
func (s *Step) Policy(getenv func(string) string) egress.Policy {
	p := egress.Policy{Origins: s.Allow.Origins, Private: s.Allow.PrivateNets}
	for _, name := range slices.Sorted(maps.Keys(s.Secrets)) {
		g := s.Secrets[name]
		p.Secrets = append(p.Secrets, egress.Secret{Name: name, Value: getenv(g.Env), Origins: g.Origins, Header: g.Header, Template: g.Value})
	}
	if l := s.Allow.HTTP; l != nil {
		p.Limits = egress.Limits{MaxResponseBytes: int64(l.MaxResponse), Timeout: time.Duration(l.Timeout),
			StallTimeout: time.Duration(l.StallTimeout), MaxRequests: l.MaxRequests}
		if l.Redirects != nil {
			p.Limits.MaxRedirects = *l.Redirects
			p.NoRedirects = *l.Redirects == 0
		}
	}
	return p
}

// Duration is a TOML string such as "30s" or "1m30s".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. \"30s\", \"2m\")", b)
	}
	if v <= 0 {
		return fmt.Errorf("duration %q must be positive", b)
	}
	*d = Duration(v)
	return nil
}

// Size is a TOML string such as "64MiB", or an integer number of bytes.
type Size int64

var sizeRe = regexp.MustCompile(`^\s*([0-9]+)\s*([KMG]i?B|B)?\s*$`)

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	m := sizeRe.FindStringSubmatch(string(b))
	if m == nil {
		return fmt.Errorf("bad size %q (want e.g. \"64MiB\")", b)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return fmt.Errorf("bad size %q", b)
	}
	mult := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "KB": 1000, "MiB": 1 << 20, "MB": 1000 * 1000, "GiB": 1 << 30, "GB": 1000 * 1000 * 1000}[m[2]]
	if n > (1<<62)/mult {
		return fmt.Errorf("size %q is too large", b)
	}
	*s = Size(n * mult)
	return nil
}

type file struct {
	Workflow   Workflow                `toml:"workflow"`
	Defaults   Defaults                `toml:"defaults"`
	Notify     Notify                  `toml:"notify"`
	Checkpoint Checkpoint              `toml:"checkpoint"`
	Inputs     []Input                 `toml:"input"`
	Steps      []Step                  `toml:"step"`
	Secrets    map[string]SecretSource `toml:"secrets"`
}

// Checkpoint is the [checkpoint] table.
type Checkpoint struct {
	// Git records the project's working tree as a shadow commit after each
	// completed step. Nil (absent): on when the project is in a git
	// repository.
	Git *bool `toml:"git"`
	// AutoCommit makes real commits on the current branch instead of
	// shadow commits (the index is updated to match).
	AutoCommit bool `toml:"auto_commit"`
}

// Input is an [[input]] table: a question asked before the first step
// runs, together with the others in one notification. Steps get the answers
// in their envelope's "inputs", by key.
type Input struct {
	Key      string   `toml:"key"`
	Question string   `toml:"question"`
	Options  []string `toml:"options"`
	Default  string   `toml:"default"`
	// Timeout lets the question expire: with a default it answers itself.
	Timeout Duration `toml:"timeout"`
}

// Notify is the [notify] table: where the run's notifications go (ntfy).
// The environment (ENABLE_NTFY, NTFY_URL, NTFY_TOPIC, NTFY_TOKEN) is used
// when it is absent.
type Notify struct {
	NtfyURL string `toml:"ntfy_url"`
	Topic   string `toml:"topic"`
	// TokenEnv names the environment variable holding an access token.
	TokenEnv string `toml:"token_env"`
}

var (
	secretNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	envRe        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Load reads and validates the manifest at path.
func Load(path string) (*Manifest, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return Parse(path, abs, b)
}

// Parse validates a manifest read from path (shown in errors as name).
func Parse(name, path string, b []byte) (*Manifest, error) {
	pos, perr := positions(b)
	var f file
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, decodeError(name, err)
	}
	if perr != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalid, perr)
	}
	m := &Manifest{Path: path, Dir: filepath.Dir(path), Workflow: f.Workflow, Defaults: f.Defaults, Notify: f.Notify, Checkpoint: f.Checkpoint, Inputs: f.Inputs, Steps: f.Steps, Secrets: f.Secrets}
	if err := m.finish(name, pos); err != nil {
		return nil, err
	}
	return m, nil
}

// New builds a manifest in code: the same defaults and checks as a TOML file.
// Plugin paths are relative to dir.
func New(dir string, wf Workflow, defaults Defaults, steps ...Step) (*Manifest, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m := &Manifest{Dir: abs, Workflow: wf, Defaults: defaults, Steps: steps}
	if err := m.finish("workflow "+strconv.Quote(wf.Name), nil); err != nil {
		return nil, err
	}
	return m, nil
}

// finish applies defaults and validates; errors name the file (or what
// stands for it) and, where pos knows it, the line.
func (m *Manifest) finish(name string, pos map[string]int) error {
	at := func(key string) string {
		// The key's own line, or that of the nearest table holding it
		// (an inline table's keys have none of their own).
		for k := key; k != ""; {
			if l := pos[k]; l > 0 {
				return fmt.Sprintf("%s:%d", name, l)
			}
			i := strings.LastIndexByte(k, '.')
			if i < 0 {
				break
			}
			k = k[:i]
		}
		return name
	}
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", at(key), ErrInvalid, fmt.Sprintf(format, args...))
	}
	if m.Workflow.Name == "" {
		return bad("workflow", "[workflow] needs a name")
	}
	if len(m.Steps) == 0 {
		return bad("", "no [[step]] tables: a workflow needs at least one step")
	}
	if (m.Notify.NtfyURL == "") != (m.Notify.Topic == "") {
		return bad("notify", "[notify] needs both ntfy_url and topic")
	}
	for _, name := range slices.Sorted(maps.Keys(m.Secrets)) {
		switch src := m.Secrets[name]; {
		case !secretNameRe.MatchString(name):
			return bad("secrets."+name, "[secrets] %q: a secret's name is letters, digits, '_' and '-'", name)
		case src.Env == "" || !envRe.MatchString(src.Env):
			return bad("secrets."+name, "[secrets] %q needs env, the environment variable holding it, as in { env = \"OPENAI_API_KEY\" }", name)
		}
	}
	keys := map[string]bool{}
	for i, in := range m.Inputs {
		at := fmt.Sprintf("input.%d", i)
		switch {
		case in.Key == "" || in.Question == "":
			return bad(at, "[[input]] %d needs a key and a question", i+1)
		case keys[in.Key]:
			return bad(at+".key", "[[input]] key %q is used twice", in.Key)
		case in.Default != "" && len(in.Options) > 0 && !slices.Contains(in.Options, in.Default):
			return bad(at+".default", "[[input]] %q: default %q is not one of the options", in.Key, in.Default)
		}
		keys[in.Key] = true
	}
	if m.Defaults.Timeout == 0 {
		m.Defaults.Timeout = Duration(DefaultTimeout)
	}
	if m.Defaults.Memory == 0 {
		m.Defaults.Memory = DefaultMemory
	}
	if m.Defaults.MaxOutput == 0 {
		m.Defaults.MaxOutput = abi.DefaultMaxOutputBytes
	}
	seen := map[string]int{}
	for i := range m.Steps {
		s := &m.Steps[i]
		key := func(k string) string { return fmt.Sprintf("step.%d.%s", i, k) }
		s.Line = pos[fmt.Sprintf("step.%d", i)]
		if s.ID == "" {
			return bad(fmt.Sprintf("step.%d", i), "step %d has no id", i+1)
		}
		if !idRe.MatchString(s.ID) {
			return bad(key("id"), "step id %q must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit", s.ID)
		}
		if j, dup := seen[s.ID]; dup {
			return bad(key("id"), "step id %q is used twice (first by step %d)", s.ID, j+1)
		}
		seen[s.ID] = i
		if s.Plugin == "" {
			return bad(fmt.Sprintf("step.%d", i), "step %q has no plugin", s.ID)
		}
		s.PluginPath = resolve(m.Dir, s.Plugin)
		if st, err := os.Stat(s.PluginPath); err != nil || st.IsDir() {
			return bad(key("plugin"), "step %q: plugin %s does not exist or is not a file", s.ID, s.Plugin)
		}
		if s.SHA256 != "" {
			s.SHA256 = strings.ToLower(s.SHA256)
			if len(s.SHA256) != 64 || strings.Trim(s.SHA256, "0123456789abcdef") != "" {
				return bad(key("sha256"), "step %q: sha256 must be 64 hex digits", s.ID)
			}
		}
		if s.Timeout == 0 {
			s.Timeout = m.Defaults.Timeout
		}
		if s.Memory == 0 {
			s.Memory = m.Defaults.Memory
		}
		if s.MaxOutput == 0 {
			s.MaxOutput = m.Defaults.MaxOutput
		}
		if s.TotalTimeout == 0 {
			s.TotalTimeout = m.Defaults.TotalTimeout
		}
		if s.Retry == nil {
			if m.Defaults.Retry != nil {
				r := *m.Defaults.Retry
				s.Retry = &r
			} else {
				s.Retry = &Retry{}
			}
		}
		if err := s.Retry.finish(); err != nil {
			return bad(key("retry"), "step %q: retry: %v", s.ID, err)
		}
		s.NonRetryable = append(s.NonRetryable, m.Defaults.NonRetryable...)
		if s.OnFailure == "" {
			s.OnFailure = m.Defaults.OnFailure
		}
		if s.OnFailure == "" {
			s.OnFailure = OnFailurePause
		}
		switch s.OnFailure {
		case OnFailurePause, OnFailureFail, OnFailureRollback:
		default:
			return bad(key("on_failure"), "step %q: on_failure must be \"pause\", \"fail\" or \"rollback\", not %q", s.ID, s.OnFailure)
		}
		if s.MaxOutput < 0 || s.MaxOutput > abi.MaxOutputBytes {
			return bad(key("max_output"), "step %q: max_output must be at most 32MiB", s.ID)
		}
		if s.Memory < 64<<10 || s.Memory > MaxMemory {
			return bad(key("memory"), "step %q: memory must be between 64KiB and 4GiB", s.ID)
		}
		if s.Needs != nil {
			for _, n := range *s.Needs {
				if j, ok := seen[n]; !ok || j >= i {
					return bad(key("needs"), "step %q needs %q, which is not an earlier step", s.ID, n)
				}
			}
		}
		for k := range s.Config {
			if strings.HasPrefix(k, abi.ReservedConfigPrefix) {
				return bad(key("config"), "step %q: config key %q: keys starting with %q belong to 12fa", s.ID, k, abi.ReservedConfigPrefix)
			}
		}
		in, err := jsonenc.Marshal(s.Input)
		if err != nil {
			return bad(key("input"), "step %q: input cannot be JSON: %v", s.ID, err)
		}
		s.InputJSON = in
		switch s.InputMode {
		case "":
			s.InputMode = InputEnvelope
		case InputEnvelope, InputRaw:
		default:
			return bad(key("input_mode"), "step %q: input_mode must be %q or %q, not %q", s.ID, InputEnvelope, InputRaw, s.InputMode)
		}
		for hostPath, guest := range s.Allow.Paths {
			if !strings.HasPrefix(guest, "/") {
				return bad(key("allow"), "step %q: guest path %q must be absolute", s.ID, guest)
			}
			if _, dup := s.Allow.WritePaths[hostPath]; dup {
				return bad(key("allow"), "step %q: %s is granted both read-only and read-write", s.ID, hostPath)
			}
		}
		for _, guest := range s.Allow.WritePaths {
			if !strings.HasPrefix(guest, "/") {
				return bad(key("allow"), "step %q: guest path %q must be absolute", s.ID, guest)
			}
		}
		if err := m.finishNetwork(s, key, bad); err != nil {
			return err
		}
		if err := m.finishCommands(s, key, bad); err != nil {
			return err
		}
	}
	return nil
}

// finishNetwork applies [defaults.allow]'s network grants to a step that
// sets none of its own, then parses and checks them.
func (m *Manifest) finishNetwork(s *Step, key func(string) string, bad func(key, format string, args ...any) error) error {
	d := m.Defaults.Allow
	hostsKey, privateKey, httpKey := key("allow.hosts"), key("allow.private"), key("allow.http")
	if s.Allow.Hosts == nil && d.Hosts != nil {
		s.Allow.Hosts, hostsKey = d.Hosts, "defaults.allow.hosts"
	}
	if s.Allow.Private == nil && d.Private != nil {
		s.Allow.Private, privateKey = d.Private, "defaults.allow.private"
	}
	if s.Allow.HTTP == nil && d.HTTP != nil {
		l := *d.HTTP
		s.Allow.HTTP, httpKey = &l, "defaults.allow.http"
	}
	s.Allow.Origins, s.Allow.PrivateNets = nil, nil
	for i, h := range s.Allow.Hosts {
		var raw string
		var methods []string
		switch v := h.(type) {
		case string:
			raw = v
		case map[string]any:
			for k, val := range v {
				switch k {
				case "url":
					raw, _ = val.(string)
				case "methods":
					list, ok := val.([]any)
					if !ok {
						return bad(hostsKey, "step %q: allow.hosts entry %d: methods must be a list of strings", s.ID, i+1)
					}
					for _, m := range list {
						ms, ok := m.(string)
						if !ok {
							return bad(hostsKey, "step %q: allow.hosts entry %d: methods must be a list of strings", s.ID, i+1)
						}
						methods = append(methods, ms)
					}
				default:
					return bad(hostsKey, "step %q: allow.hosts entry %d: unknown key %q (want url and methods)", s.ID, i+1, k)
				}
			}
			if raw == "" {
				return bad(hostsKey, "step %q: allow.hosts entry %d has no url", s.ID, i+1)
			}
		default:
			return bad(hostsKey, "step %q: allow.hosts entry %d must be a string or { url = \"…\", methods = [...] }", s.ID, i+1)
		}
		o, err := egress.ParseOrigin(raw, methods)
		if err != nil {
			return bad(hostsKey, "step %q: allow.hosts: %v", s.ID, err)
		}
		s.Allow.Origins = append(s.Allow.Origins, o)
	}
	for _, raw := range s.Allow.Private {
		p, err := egress.ParsePrivate(raw)
		if err != nil {
			return bad(privateKey, "step %q: allow.private: %v", s.ID, err)
		}
		s.Allow.PrivateNets = append(s.Allow.PrivateNets, p)
	}
	if l := s.Allow.HTTP; l != nil {
		if len(s.Allow.Origins) == 0 {
			return bad(httpKey, "step %q: allow.http sets HTTP limits, but allow.hosts grants no host", s.ID)
		}
		switch {
		case l.MaxResponse < 0 || l.MaxResponse > abi.MaxHTTPResponseBytes:
			return bad(httpKey, "step %q: allow.http.max_response must be at most 32MiB", s.ID)
		case l.MaxRequests < 0:
			return bad(httpKey, "step %q: allow.http.max_requests must be positive", s.ID)
		case l.Redirects != nil && (*l.Redirects < 0 || *l.Redirects > abi.MaxHTTPRedirects):
			return bad(httpKey, "step %q: allow.http.redirects must be from 0 to %d", s.ID, abi.MaxHTTPRedirects)
		}
	}
	if len(s.Allow.PrivateNets) > 0 && len(s.Allow.Origins) == 0 {
		return bad(privateKey, "step %q: allow.private grants address ranges, but allow.hosts grants no host", s.ID)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Secrets)) {
		g := s.Secrets[name]
		k := key("secrets." + name)
		src, ok := m.Secrets[name]
		if !ok {
			return bad(k, "step %q: secret %q is not declared in [secrets]", s.ID, name)
		}
		g.Env, g.Origins = src.Env, nil
		if len(g.Hosts) == 0 {
			return bad(k, "step %q: secret %q needs hosts, the origins it may go to", s.ID, name)
		}
		for _, h := range g.Hosts {
			if !strings.Contains(h, "://") {
				h = "https://" + h
			}
			o, err := egress.ParseOrigin(h, nil)
			if err != nil {
				return bad(k, "step %q: secret %q: %v", s.ID, name, err)
			}
			if !slices.ContainsFunc(s.Allow.Origins, func(a egress.Origin) bool { return a.Covers(o) }) {
				return bad(k, "step %q: secret %q may go to %s, which the step's allow.hosts does not grant", s.ID, name, o)
			}
			g.Origins = append(g.Origins, o)
		}
		switch {
		case g.Value != "" && g.Header == "":
			return bad(k, "step %q: secret %q has a value but no header to put it in", s.ID, name)
		case g.Header != "" && !headerRe.MatchString(g.Header):
			return bad(k, "step %q: secret %q: %q is not a header name", s.ID, name, g.Header)
		case g.Header != "" && slices.Contains([]string{"host", "content-length", "transfer-encoding", "connection"}, strings.ToLower(g.Header)):
			return bad(k, "step %q: secret %q: the host sets %s itself", s.ID, name, g.Header)
		case g.Value != "" && strings.Count(g.Value, "{secret}") != 1:
			return bad(k, "step %q: secret %q: value must hold {secret} once, as in \"Bearer {secret}\"", s.ID, name)
		}
		s.Secrets[name] = g
	}
	return nil
}

// finishCommands resolves a step's allow.commands on the start-up PATH and
// checks its allow.env.
func (m *Manifest) finishCommands(s *Step, key func(string) string, bad func(key, format string, args ...any) error) error {
	s.Allow.Resolved = nil
	k := key("allow.commands")
	if len(s.Allow.Commands) > 0 && len(s.Allow.WritePaths) == 0 {
		return bad(k, "step %q: allow.commands needs a write_paths grant for the commands to run in", s.ID)
	}
	var dirs []string
	for host := range s.Allow.Paths {
		dirs = append(dirs, resolve(m.Dir, host))
	}
	for host := range s.Allow.WritePaths {
		dirs = append(dirs, resolve(m.Dir, host))
	}
	for i, c := range s.Allow.Commands {
		var cmd command.Command
		switch v := c.(type) {
		case string:
			cmd.Name = v
		case map[string]any:
			for field, val := range v {
				switch field {
				case "name":
					cmd.Name, _ = val.(string)
				case "idempotent":
					b, ok := val.(bool)
					if !ok {
						return bad(k, "step %q: allow.commands entry %d: idempotent must be true or false", s.ID, i+1)
					}
					cmd.Idempotent = b
				default:
					return bad(k, "step %q: allow.commands entry %d: unknown key %q (want name and idempotent)", s.ID, i+1, field)
				}
			}
		default:
			return bad(k, "step %q: allow.commands entry %d must be a name or { name = \"…\", idempotent = true }", s.ID, i+1)
		}
		if cmd.Name == "" {
			return bad(k, "step %q: allow.commands entry %d has no name", s.ID, i+1)
		}
		path, err := command.Resolve(cmd.Name, dirs)
		if err != nil {
			return bad(k, "step %q: allow.commands: %v", s.ID, err)
		}
		cmd.Path = path
		s.Allow.Resolved = append(s.Allow.Resolved, cmd)
	}
	for _, name := range s.Allow.Env {
		switch {
		case !envRe.MatchString(name):
			return bad(key("allow.env"), "step %q: allow.env: %q is not a variable name", s.ID, name)
		case command.RiskyEnv(name) && !s.Allow.UnsafeEnv:
			return bad(key("allow.env"), "step %q: allow.env: %s lets a command run something else; set allow.unsafe_env = true to grant it anyway", s.ID, name)
		}
	}
	if len(s.Allow.Env) > 0 && len(s.Allow.Resolved) == 0 {
		return bad(key("allow.env"), "step %q: allow.env names variables, but allow.commands grants no command", s.ID)
	}
	return nil
}

var headerRe = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// finish fills a policy's unset fields with the defaults and checks it.
func (r *Retry) finish() error {
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.InitialInterval == 0 {
		r.InitialInterval = Duration(DefaultInitialInterval)
	}
	if r.Backoff == 0 {
		r.Backoff = DefaultBackoff
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = Duration(DefaultMaxInterval)
	}
	if r.Jitter == 0 {
		r.Jitter = DefaultJitter
	}
	switch {
	case r.MaxAttempts < 1 || r.MaxAttempts > 1000:
		return fmt.Errorf("max_attempts must be between 1 and 1000")
	case r.Backoff < 1 || r.Backoff > 100:
		return fmt.Errorf("backoff must be between 1 and 100")
	case r.Jitter < 0 || r.Jitter > 1:
		return fmt.Errorf("jitter must be between 0 and 1")
	case r.MaxInterval < r.InitialInterval:
		return fmt.Errorf("max_interval is shorter than initial_interval")
	}
	return nil
}

// Delay is the wait before attempt n+1 after attempt n failed (n from 1),
// before jitter.
func (r *Retry) Delay(n int) time.Duration {
	d := float64(r.InitialInterval) * math.Pow(r.Backoff, float64(n-1))
	return time.Duration(min(d, float64(r.MaxInterval)))
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, filepath.FromSlash(p))
}

// MemoryPages is the step's memory cap in 64 KiB Wasm pages, rounded up.
func (s *Step) MemoryPages() uint32 {
	return uint32((int64(s.Memory) + 64<<10 - 1) / (64 << 10))
}

func decodeError(name string, err error) error {
	var de *toml.DecodeError
	var sm *toml.StrictMissingError
	switch {
	case errors.As(err, &sm) && len(sm.Errors) > 0:
		var lines []string
		for _, e := range sm.Errors {
			row, _ := e.Position()
			lines = append(lines, fmt.Sprintf("%s:%d: %v: unknown key %q", name, row, ErrInvalid, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(lines, "\n"))
	case errors.As(err, &de):
		row, col := de.Position()
		return fmt.Errorf("%s:%d:%d: %w: %s", name, row, col, ErrInvalid, de.Error())
	}
	return fmt.Errorf("%s: %w: %v", name, ErrInvalid, err)
}

// RawInput is what the step's plugin gets with input_mode = "raw": a
// string input as its bytes, any other input as JSON, no input as nothing.
func (s *Step) RawInput() []byte {
	switch v := s.Input.(type) {
	case nil:
		return nil
	case string:
		return []byte(v)
	}
	return s.InputJSON
}
