package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/12fa/12fa/abi"
)

// instance is an instance of a plugin with its own kernel, captured output
// and memory allocator. It serves one call at a time. An instance of a
// resettable plugin (see snapshot) is reset to the state it had right after
// start-up and serves call after call; any other serves exactly one.
type instance struct {
	p              *Plugin
	mod            api.Module
	k              *kernel
	stderr, stdout *boundedBuffer
	mem            *memTracker
	closeFS        func()
	// release gives back the instance's share of the memory budget.
	release func()
	fns     map[string]api.Function
	snap    *snapshot // nil: serve one call only
	// ready, when set, is closed when the reset after the last call is
	// done.
	ready chan struct{}
}

func (in *instance) close() {
	if in.mod != nil {
		_ = in.mod.Close(context.Background())
	}
	if in.closeFS != nil {
		in.closeFS()
	}
	if in.release != nil {
		in.release()
	}
}

// function returns the exported function name, looked up once per instance
// (wazero makes a new call engine on every lookup).
func (in *instance) function(name string) api.Function {
	if f, ok := in.fns[name]; ok {
		return f
	}
	f := in.mod.ExportedFunction(name)
	in.fns[name] = f
	return f
}

// call calls the export name with the instance's state in ctx. a is nil
// during start-up.
func (in *instance) call(ctx context.Context, name string, a *attempt, args ...uint64) (uint64, error) {
	f := in.function(name)
	if f == nil {
		return 0, fmt.Errorf("plugin exports no function %q", name)
	}
	ctx = context.WithValue(ctx, callStateKey{}, &callState{k: in.k, a: a})
	res, err := f.Call(ctx, args...)
	if err != nil || len(res) == 0 {
		return 0, err
	}
	return res[0], nil
}

// newInstance instantiates the plugin and runs its start-up (the WASI
// reactor's _initialize or a command module's constructors, then, when
// warm, the optional abi.ExportPrepare and the snapshot a resettable plugin
// is reset to), all bounded by ctx. The caller has reserved its memory
// budget, which the instance gives back when closed (or at once on error).
// The returned instance is never nil: on error it still carries the buffers
// that explain the failure.
func (p *Plugin) newInstance(ctx context.Context, mounts []Mount, warm bool) (in *instance, err error) {
	n := p.reservation()
	in = &instance{
		p:       p,
		k:       newKernel(uint64(p.limits.MaxPages) * PageSize),
		stderr:  &boundedBuffer{max: abi.MaxStderrBytes},
		stdout:  &boundedBuffer{max: abi.MaxStderrBytes},
		mem:     &memTracker{pool: p.host.mem},
		release: func() { p.host.budget.Release(n) },
		fns:     make(map[string]api.Function),
	}
	defer func() {
		if err != nil {
			if in.mod != nil {
				_ = in.mod.Close(context.Background())
				in.mod = nil
			}
			if in.closeFS != nil {
				in.closeFS()
				in.closeFS = nil
			}
			in.release()
			in.release = nil
		}
	}()
	rt, compiled := p.rt, p.compiled
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
		WithStderr(in.stderr).WithStdout(in.stdout)
	if len(mounts) > 0 {
		if rt, compiled, err = p.fsRuntime(ctx); err != nil {
			return in, err
		}
		fsc, closeFS, err := mountConfig(mounts)
		if err != nil {
			return in, err
		}
		in.closeFS = closeFS
		mc = mc.WithFSConfig(fsc)
	}
	p.instances.Add(1)
	in.mod, err = rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, in.mem), compiled, mc)
	if err != nil {
		return in, err
	}
	for _, name := range []string{"_initialize", "__wasm_call_ctors", abi.ExportPrepare} {
		if name == "__wasm_call_ctors" && p.Exports["_initialize"] {
			continue // a reactor's _initialize has run them
		}
		if name == abi.ExportPrepare && !warm {
			continue
		}
		if p.Exports[name] {
			if _, err := in.call(ctx, name, nil); err != nil {
				return in, fmt.Errorf("start-up (%s): %w", name, err)
			}
		}
		if name == "_initialize" && p.hsInit {
			// A GHC plugin's Haskell runtime starts after the reactor's
			// own start-up, with no arguments (argc 0, argv NULL), as
			// Extism's hosts do.
			if _, err := in.call(ctx, "hs_init", nil, 0, 0); err != nil {
				return in, fmt.Errorf("start-up (hs_init): %w", err)
			}
		}
	}
	if warm && p.resettable && len(mounts) == 0 {
		in.snap, err = takeSnapshot(in.mod, p.hasMemory, p.globalNames)
		if err != nil {
			return in, err
		}
	}
	return in, nil
}

// fsRuntime returns the runtime and compiled module for calls with file
// grants, made on first use. Its WASI is wazero's own, file descriptors
// and all; instances made in it are never reset.
func (p *Plugin) fsRuntime(ctx context.Context) (wazero.Runtime, wazero.CompiledModule, error) {
	p.fsOnce.Do(func() {
		p.fsRT, p.fsCompiled, p.fsErr = p.host.newRuntime(ctx, p.limits, p.wasm, false)
	})
	return p.fsRT, p.fsCompiled, p.fsErr
}

// newRuntime makes a wazero runtime with the host modules a plugin may
// import, and compiles wasm in it. guardStdio is for runtimes whose
// instances have no file grants and may be reset (see instantiateWASI).
func (h *Host) newRuntime(ctx context.Context, limits Limits, wasm []byte, guardStdio bool) (wazero.Runtime, wazero.CompiledModule, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(limits.MaxPages))
	fail := func(err error) (wazero.Runtime, wazero.CompiledModule, error) {
		_ = rt.Close(ctx)
		return nil, nil, err
	}
	if err := instantiateWASI(ctx, rt, guardStdio); err != nil {
		return fail(fmt.Errorf("host: wasi: %w", err))
	}
	if err := h.instantiateKernel(ctx, rt); err != nil {
		return fail(fmt.Errorf("host: kernel: %w", err))
	}
	if err := h.instantiateHostFunctions(ctx, rt); err != nil {
		return fail(fmt.Errorf("host: host functions: %w", err))
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return fail(fmt.Errorf("host: compile plugin: %w: %s", ErrInvalidPlugin, firstLine(err.Error())))
	}
	return rt, compiled, nil
}

// WASI errno values (wasi_snapshot_preview1).
const (
	wasiErrnoSuccess = 0
	wasiErrnoBadf    = 8
	wasiErrnoNotsup  = 58
)

// instantiateWASI instantiates wazero's WASI in rt. With guardStdio, the
// two functions that change an instance's file descriptor table without a
// file grant (fd_close and fd_renumber; nothing can be opened without a
// grant) leave standard input, output and error in place: their state
// lives outside the instance's memory, so a reset instance would otherwise
// start its next call with them closed.
func instantiateWASI(ctx context.Context, rt wazero.Runtime, guardStdio bool) error {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	if guardStdio {
		b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, stack []uint64) {
			if fd := uint32(stack[0]); fd <= 2 {
				stack[0] = wasiErrnoSuccess // closing stdio is a no-op
			} else {
				stack[0] = wasiErrnoBadf
			}
		}), []api.ValueType{i32}, []api.ValueType{i32}).Export("fd_close")
		b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, stack []uint64) {
			stack[0] = wasiErrnoNotsup
		}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("fd_renumber")
	}
	_, err := b.Instantiate(ctx)
	return err
}

// snapshot is an instance's memory and mutable globals right after its
// start-up.
type snapshot struct {
	hasMem  bool
	mem     []byte
	globals []api.MutableGlobal
	values  []uint64
}

// takeSnapshot copies mod's memory and the values of the globals named.
// (wazero's Memory returns a nil pointer in a non-nil interface for a
// module without one, hence hasMemory.)
func takeSnapshot(mod api.Module, hasMemory bool, globalNames []string) (*snapshot, error) {
	s := &snapshot{hasMem: hasMemory}
	if hasMemory {
		m := mod.Memory()
		b, ok := m.Read(0, m.Size())
		if !ok {
			return nil, errors.New("snapshot: memory unreadable")
		}
		s.mem = append([]byte(nil), b...)
	}
	for _, name := range globalNames {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			return nil, fmt.Errorf("snapshot: global %s is not mutable", name)
		}
		s.globals = append(s.globals, g)
		s.values = append(s.values, g.Get())
	}
	return s, nil
}

// resettable reports whether reset can put the instance back in its
// post-start-up state: not when it has no snapshot, was closed (a guest
// that exited), or its memory grew (Wasm memory does not shrink).
func (in *instance) resettable() bool {
	s := in.snap
	if s == nil || in.mod.IsClosed() {
		return false
	}
	return !s.hasMem || in.mod.Memory().Size() == uint32(len(s.mem))
}

// reset puts a resettable instance back in its post-start-up state for its
// next call.
func (in *instance) reset() {
	s := in.snap
	if s.hasMem {
		b, _ := in.mod.Memory().Read(0, uint32(len(s.mem)))
		copy(b, s.mem)
	}
	for i, g := range s.globals {
		g.Set(s.values[i])
	}
	in.k.reset()
	in.stderr.reset()
	in.stdout.reset()
	in.mem.reset()
}

// reserve reserves the memory budget of a new instance, waiting while it is
// spent (bounded by callCtx).
func (p *Plugin) reserve(ctx, callCtx context.Context, timeout time.Duration) error {
	if !p.host.budget.TryAcquire(p.reservation()) {
		// Instances kept for later hold budget: give it back before waiting.
		p.host.waiting.Add(1)
		p.host.dropIdle()
		err := p.host.budget.Acquire(callCtx, p.reservation())
		p.host.waiting.Add(-1)
		if err != nil {
			if ctx.Err() != nil {
				return callErr(ErrCanceled, "%v", ctx.Err())
			}
			return callErr(ErrTimeout, "waited %s for memory budget and gave up", timeout)
		}
	}
	return nil
}
