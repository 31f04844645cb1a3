package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/command"
	"github.com/12fa/12fa/egress"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/internal/jsrunner"
	"github.com/12fa/12fa/manifest"
)

// loaded is a step's plugin, read and checked.
type loaded struct {
	step   *manifest.Step
	sha    string
	plugin *host.Plugin
	// script is the source of a JavaScript step, which runs in the JS step
	// runner (internal/jsrunner); nil for a Wasm plugin.
	script []byte
	// http sends the step's HTTP requests under its grants; nil when
	// allow.hosts grants none.
	http *egress.Client
	// missing names the secrets granted to the step that have no value.
	missing []string
	// exec runs the step's commands; nil when allow.commands grants none.
	exec *command.Policy
}

// load reads, checks and compiles every step's plugin before anything runs,
// so that a missing, pinned-and-changed or unusable plugin stops the
// workflow before its first step. Each file is read and hashed once.
func (r *Runtime) load(ctx context.Context, m *manifest.Manifest) ([]loaded, error) {
	type file struct {
		wasm   []byte
		sha    string
		script []byte
	}
	type compiled struct {
		path  string
		pages uint32
	}
	files := map[string]file{}
	plugins := map[compiled]*host.Plugin{}
	start := time.Now()
	steps := make([]loaded, len(m.Steps))
	for i := range m.Steps {
		s := &m.Steps[i]
		f, ok := files[s.PluginPath]
		if !ok {
			b, err := os.ReadFile(s.PluginPath)
			if err != nil {
				return nil, &StepError{Step: s.ID, Cause: abi.CausePluginMissing, Err: fmt.Errorf("read plugin: %w", err)}
			}
			// A JavaScript step is known (and pinned) by its script's
			// digest, and runs in the JS step runner.
			f = file{wasm: b, sha: host.SHA256Hex(b)}
			if jsrunner.IsScript(s.PluginPath) {
				f.script, f.wasm = b, jsrunner.Wasm
			}
			files[s.PluginPath] = f
		}
		if f.script != nil && s.InputMode == manifest.InputRaw {
			return nil, &StepError{Step: s.ID, Cause: abi.CauseInvalidPlugin, Err: fmt.Errorf(
				"%s: input_mode = %q is for Wasm plugins; a JavaScript step reads its input as env.input", s.Plugin, manifest.InputRaw)}
		}
		if s.SHA256 != "" && s.SHA256 != f.sha {
			return nil, &StepError{Step: s.ID, Cause: abi.CausePluginPin, Err: fmt.Errorf("%w: %s is %s, the manifest pins %s",
				ErrPluginPin, s.Plugin, f.sha, s.SHA256)}
		}
		key := compiled{s.PluginPath, s.MemoryPages()}
		p, ok := plugins[key]
		if !ok {
			var err error
			if p, err = r.host.Load(ctx, f.wasm, host.Limits{MaxPages: key.pages}); err != nil {
				return nil, &StepError{Step: s.ID, Cause: abi.CauseInvalidPlugin, Err: fmt.Errorf("load %s: %w", s.Plugin, err)}
			}
			plugins[key] = p
		}
		fn := s.Function
		if fn == "" {
			fn = abi.DefaultFunction
		}
		for _, name := range []string{fn, s.Rollback} {
			// A script's functions are known only when it runs; the runner
			// names a missing one.
			if name != "" && !p.Exports[name] && f.script == nil {
				return nil, &StepError{Step: s.ID, Cause: abi.CauseNoFunction, Err: fmt.Errorf("%s exports no function %q of type () -> i32", s.Plugin, name)}
			}
		}
		steps[i] = loaded{step: s, sha: f.sha, plugin: p, script: f.script}
		if len(s.Allow.Origins) > 0 {
			// Secrets are read from the environment here, at each process's
			// start, and live only in the client.
			pol := s.Policy(os.Getenv)
			for _, sec := range pol.Secrets {
				if sec.Value == "" {
					steps[i].missing = append(steps[i].missing, fmt.Sprintf("%s ($%s)", sec.Name, s.Secrets[sec.Name].Env))
				}
			}
			steps[i].http = egress.NewClient(pol)
		}
		if len(s.Allow.Resolved) > 0 {
			p := &command.Policy{Commands: s.Allow.Resolved, Env: s.Allow.Env, Getenv: os.LookupEnv}
			for host, guest := range s.Allow.WritePaths {
				p.Dirs = append(p.Dirs, command.Dir{Guest: guest, Host: resolvePath(m.Dir, host)})
			}
			slices.SortFunc(p.Dirs, func(a, b command.Dir) int { return strings.Compare(a.Guest, b.Guest) })
			steps[i].exec = p
		}
	}
	r.emit(Event{Type: EventPluginsLoaded, Workflow: m.Workflow.Name, Steps: len(plugins), Duration: time.Since(start)})
	return steps, nil
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, filepath.FromSlash(p))
}
