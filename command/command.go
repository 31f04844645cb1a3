// Package command runs a step's granted commands: outside the sandbox, with
// the user's rights, so every way in is narrowed. A command is named, never
// given to a shell; its path is resolved once, at load; its environment
// holds exactly the names granted; its working directory is inside a
// write grant after symlinks are resolved; it runs in its own process
// group, killed whole at its deadline; its output is capped; and the
// arguments known to make git or go run something else are refused.
//
// It imports only the standard library and abi.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/12fa/12fa/abi"
)

// Command is one allow.commands entry, resolved.
type Command struct {
	Name string
	// Path is the absolute path the name resolved to at load.
	Path string
	// Idempotent: running it twice does no harm (its calls are replayed
	// without an intent record).
	Idempotent bool
}

// Dir is a write grant a command may run in: the guest's path and the
// host's (resolved).
type Dir struct{ Guest, Host string }

// Policy is what one step may run.
type Policy struct {
	Commands []Command
	// Env names the variables a command gets; the values are the host's
	// (Getenv) unless the request sets them.
	Env    []string
	Getenv func(string) (string, bool)
	// Dirs are the step's write grants.
	Dirs []Dir
	// Timeout bounds a command that asks for none (within the attempt's
	// deadline); MaxOutput bounds stdout and stderr each.
	Timeout   time.Duration
	MaxOutput int
}

// DefaultTimeout bounds a command that sets no timeout, within the
// attempt's deadline.
const DefaultTimeout = 10 * time.Minute

// waitDelay bounds the wait for the pipes of a process that is gone, held
// open by one it started.
const waitDelay = 2 * time.Second

// RiskyEnv reports whether a variable name is one that makes an allowed
// command run something else (a preloaded library, git's ssh or config, a
// go flag, a node option); granting one needs allow.unsafe_env.
func RiskyEnv(name string) bool {
	for _, p := range []string{"LD_", "DYLD_", "GIT_", "npm_config_", "NPM_CONFIG_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return slices.Contains([]string{"GOFLAGS", "NODE_OPTIONS", "BASH_ENV", "ENV", "PYTHONSTARTUP", "PERL5OPT", "RUBYOPT", "GOENV"}, name)
}

// Resolve finds name on the start-up PATH as an absolute path, refusing a
// relative PATH entry (exec.ErrDot) and a path inside one of dirs (a
// binary the step could replace).
func Resolve(name string, dirs []string) (string, error) {
	if strings.ContainsRune(name, os.PathSeparator) {
		return "", fmt.Errorf("command %q: give a name found on PATH, not a path", name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("command %q: %w", name, err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("command %q: %w", name, err)
	}
	for _, d := range dirs {
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if within(real, rd) || within(p, rd) {
			return "", fmt.Errorf("command %q resolves to %s, inside the write grant %s: the step could replace it", name, p, d)
		}
	}
	return p, nil
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(os.PathSeparator)) && !filepath.IsAbs(rel)
}

func fail(code abi.Cause, format string, args ...any) abi.ExecResponse {
	return abi.ExecResponse{ExitCode: -1, Error: &abi.HostError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// Lookup returns the granted command called name.
func (p *Policy) Lookup(name string) (Command, bool) {
	for _, c := range p.Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// Exec runs req under p and returns what it did. It never panics and never
// returns a Go error: a refusal, a failure to start and a timeout are in
// the response; a non-zero exit is data.
func (p *Policy) Exec(ctx context.Context, req abi.ExecRequest) abi.ExecResponse {
	cmd, ok := p.Lookup(req.Command)
	if !ok {
		return fail(abi.CauseExecDenied, "command %q is not in the step's allow.commands", req.Command)
	}
	for _, a := range append([]string{req.Command}, req.Args...) {
		if strings.ContainsRune(a, 0) {
			return fail(abi.CauseExecDenied, "an argument holds a NUL byte")
		}
	}
	args, err := guard(cmd.Name, req.Args)
	if err != nil {
		return fail(abi.CauseExecDenied, "%s: %v", cmd.Name, err)
	}
	dir, err := p.cwd(req.Cwd)
	if err != nil {
		return fail(abi.CauseExecDenied, "%v", err)
	}
	env, err := p.env(cmd.Name, req.Env)
	if err != nil {
		return fail(abi.CauseExecDenied, "%v", err)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			return fail(abi.CauseExecDenied, "timeout %q is not a duration such as \"2m\"", req.Timeout)
		}
		timeout = min(timeout, d)
	}
	max := p.MaxOutput
	if max <= 0 {
		max = abi.MaxExecOutputBytes
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	c := exec.CommandContext(ctx, cmd.Path, args...)
	c.Args[0] = cmd.Name
	c.Dir, c.Env = dir, env
	c.Stdin = strings.NewReader(req.Stdin)
	stdout, stderr := &capped{max: max}, &capped{max: max}
	c.Stdout, c.Stderr = stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// At the deadline the whole group goes, not only the command: a
	// grandchild holding stdout would keep Wait waiting.
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = waitDelay
	start := time.Now()
	err = c.Run()
	if c.Process != nil {
		// Whatever the command left running in its group goes with it.
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	resp := abi.ExecResponse{Stdout: stdout.String(), Stderr: stderr.String(), Truncated: stdout.cut || stderr.cut,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		resp.ExitCode = -1
		resp.Error = &abi.HostError{Code: abi.CauseExecTimeout, Message: fmt.Sprintf("%s was killed (with every process it started) after %s", cmd.Name, time.Since(start).Round(time.Millisecond))}
	case errors.As(err, &exitErr):
		resp.ExitCode = exitErr.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		resp.ExitCode = c.ProcessState.ExitCode() // a process it started held its output open
	case err != nil:
		resp.ExitCode = -1
		resp.Error = &abi.HostError{Code: abi.CauseExecFailed, Message: fmt.Sprintf("%s could not run: %v", cmd.Name, err)}
	}
	return resp
}

// cwd maps the guest path dir into a write grant, refusing one that leaves
// it, symlinks resolved.
func (p *Policy) cwd(guest string) (string, error) {
	if len(p.Dirs) == 0 {
		return "", errors.New("a command runs in a write_paths grant, and the step has none")
	}
	if guest == "" {
		guest = p.Dirs[0].Guest
	}
	if !strings.HasPrefix(guest, "/") {
		return "", fmt.Errorf("cwd %q must be an absolute guest path", guest)
	}
	g := filepath.Clean(guest)
	for _, d := range p.Dirs {
		rel, err := filepath.Rel(filepath.Clean(d.Guest), g)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		host := filepath.Join(d.Host, rel)
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return "", fmt.Errorf("cwd %s: %v", guest, errors.Unwrap(err))
		}
		root, err := filepath.EvalSymlinks(d.Host)
		if err != nil {
			return "", fmt.Errorf("write grant %s: %v", d.Guest, err)
		}
		if !within(real, root) {
			return "", fmt.Errorf("cwd %s leads out of the write grant %s (through a symlink)", guest, d.Guest)
		}
		if st, err := os.Stat(real); err != nil || !st.IsDir() {
			return "", fmt.Errorf("cwd %s is not a directory", guest)
		}
		return real, nil
	}
	return "", fmt.Errorf("cwd %s is in none of the step's write_paths grants", guest)
}

// env builds the command's whole environment: the granted names only, with
// the host's values or the request's; never the host's whole environment.
// git gets its config and prompts switched off.
func (p *Policy) env(name string, set map[string]string) ([]string, error) {
	for k := range set {
		if !slices.Contains(p.Env, k) {
			return nil, fmt.Errorf("env %s is not in the step's allow.env", k)
		}
	}
	env := []string{}
	for _, k := range p.Env {
		if v, ok := set[k]; ok {
			env = append(env, k+"="+v)
		} else if p.Getenv != nil {
			if v, ok := p.Getenv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	}
	if name == "git" {
		env = append(env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=")
	}
	return env, nil
}

// gitConfig is what every git command gets before the step's arguments:
// no fsmonitor or hooks (which run what a repository's config names), no
// transport but https and http (no ssh command, no ext::, no file://).
var gitConfig = []string{
	"-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "core.sshCommand=false",
	"-c", "protocol.allow=never", "-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always",
	"-c", "protocol.file.allow=never", "-c", "protocol.ext.allow=never", "-c", "uploadpack.packObjectsHook=",
	"-c", "core.pager=cat", "-c", "credential.helper=",
}

// guard refuses the arguments known to make an allowed command run
// something else, and returns the argv to run.
func guard(name string, args []string) ([]string, error) {
	switch name {
	case "git":
		if len(args) > 0 && strings.HasPrefix(args[0], "-") {
			return nil, fmt.Errorf("option %q before the subcommand (git options are the host's)", args[0])
		}
		for _, a := range args {
			switch {
			case a == "-c" || a == "-C" || a == "-u":
				return nil, fmt.Errorf("argument %q is refused", a)
			case hasOption(a, "--config-env", "--exec-path", "--upload-pack", "--receive-pack", "--git-dir", "--work-tree",
				"--template", "--config", "--ext-diff", "--output"):
				return nil, fmt.Errorf("argument %q is refused", a)
			case strings.Contains(strings.ToLower(a), "ext::") || strings.HasPrefix(a, "-c") && len(a) > 2:
				return nil, fmt.Errorf("argument %q is refused", a)
			}
		}
		return append(slices.Clone(gitConfig), args...), nil
	case "go":
		for _, a := range args {
			if hasOption(a, "-exec", "--exec", "-toolexec", "--toolexec", "-modfile", "--modfile", "-overlay", "--overlay", "-pgo", "--pgo") {
				return nil, fmt.Errorf("argument %q is refused", a)
			}
		}
	}
	return args, nil
}

// hasOption reports whether a is one of opts, alone or as opt=value.
func hasOption(a string, opts ...string) bool {
	for _, o := range opts {
		if a == o || strings.HasPrefix(a, o+"=") {
			return true
		}
	}
	return false
}

// capped keeps the first max bytes written to it and says whether more
// came. (It is no bytes.Buffer: io.Copy would use the buffer's ReadFrom
// and never call Write.)
type capped struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room < len(p) {
		c.cut = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil // keep the command running; what is over is dropped
	}
	return c.buf.Write(p)
}

func (c *capped) String() string { return c.buf.String() }
