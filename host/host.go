package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sync/semaphore"

	"github.com/12fa/12fa/abi"
)

// PageSize is the size of a Wasm memory page.
const PageSize = 64 << 10

// Config configures a Host.
type Config struct {
	// CacheDir holds compiled modules between processes. Empty keeps them in
	// memory only.
	CacheDir string
	// MemoryBudget bounds the linear memory that instances alive at once may
	// grow to, in bytes: each call (and each spare instance) reserves twice
	// its plugin's memory cap (the guest's memory and the Extism kernel's)
	// before it is made, and waits while the budget is spent. Default:
	// DefaultMemoryBudget. A call whose reservation alone exceeds the budget
	// runs alone.
	MemoryBudget int64
}

// DefaultMemoryBudget is the default Config.MemoryBudget: 8 GiB, enough for
// 64 concurrent instances at the default 64 MiB cap.
const DefaultMemoryBudget = 8 << 30

// Host compiles plugins and makes instances of them. It is safe for
// concurrent use.
type Host struct {
	cfg   Config
	log   hclog.Logger
	cache wazero.CompilationCache

	mem    *memPool
	budget *semaphore.Weighted
	// waiting counts calls waiting for memory budget.
	waiting atomic.Int32

	// bg is the context of background work (instances made ahead); Close
	// cancels it. bgWork counts that work; bgMu orders its start against
	// Close.
	bg       context.Context
	cancelBg context.CancelFunc
	bgMu     sync.Mutex
	bgWork   sync.WaitGroup
	closing  bool

	mu       sync.Mutex
	compiled map[compileKey]*Plugin
	closed   bool
}

type compileKey struct {
	sha      string
	maxPages uint32
}

// New returns a Host.
func New(ctx context.Context, cfg Config, log hclog.Logger) (*Host, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("host: open compile cache %s: %w", cfg.CacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	h := &Host{cfg: cfg, log: log, cache: cache, compiled: make(map[compileKey]*Plugin), mem: newMemPool()}
	h.bg, h.cancelBg = context.WithCancel(context.WithoutCancel(ctx))
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	h.cfg = cfg
	h.budget = semaphore.NewWeighted(cfg.MemoryBudget)
	return h, nil
}

// background runs f in a goroutine that Close waits for. It reports false,
// and does not run f, once Close has begun.
func (h *Host) background(f func()) bool {
	h.bgMu.Lock()
	defer h.bgMu.Unlock()
	if h.closing {
		return false
	}
	h.bgWork.Add(1)
	go func() {
		defer h.bgWork.Done()
		f()
	}()
	return true
}

// dropIdle closes every instance kept for a later call, giving their
// memory budget back.
func (h *Host) dropIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.compiled {
		p.pool.drop()
	}
}

// Close releases every compiled plugin and the cache handle. No call may be
// in flight.
func (h *Host) Close(ctx context.Context) error {
	h.bgMu.Lock()
	h.closing = true
	h.bgMu.Unlock()
	h.cancelBg()
	h.bgWork.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	for _, p := range h.compiled {
		p.pool.drop()
		errs = append(errs, p.rt.Close(ctx))
		if p.fsRT != nil {
			errs = append(errs, p.fsRT.Close(ctx))
		}
	}
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

// Limits are the resource bounds a compiled plugin carries.
type Limits struct {
	// MaxPages caps each linear memory of an instance, in 64 KiB pages.
	MaxPages uint32
}

// reservation is what one instance of p may hold in linear memory, capped
// at the whole budget so that a large plugin can still run alone.
func (p *Plugin) reservation() int64 {
	return min(2*int64(p.limits.MaxPages)*PageSize, p.host.cfg.MemoryBudget)
}

// Plugin is a compiled plugin. Make calls to it with Call.
type Plugin struct {
	// SHA256 is the hex digest of the plugin's bytes.
	SHA256 string
	// Exports lists the functions the plugin exports.
	Exports map[string]bool

	host   *Host
	limits Limits
	wasm   []byte // what is compiled: the plugin, with its globals exported when resettable
	rt     wazero.Runtime
	// compiled is the plugin compiled in rt, for calls without file grants.
	compiled wazero.CompiledModule

	// resettable: instances are reset to their post-start-up snapshot and
	// reused (see snapshot); otherwise each call gets a fresh instance.
	// fresh says why not.
	resettable  bool
	fresh       string
	globalNames []string
	hasMemory   bool
	// hsInit: start-up calls GHC's hs_init (see newInstance).
	hsInit bool

	// Calls with file grants get fresh instances from a runtime of their
	// own, made on first use.
	fsOnce     sync.Once
	fsRT       wazero.Runtime
	fsCompiled wazero.CompiledModule
	fsErr      error

	// pool holds the instances kept for the next calls.
	pool *pool

	calls, instances atomic.Int64
}

// PluginStats counts what a plugin's calls cost.
type PluginStats struct {
	// Calls counts calls that ran in an instance.
	Calls int64
	// Instances counts instances made (and started up).
	Instances int64
	// Resets counts instances reset for another call.
	Resets int64
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() PluginStats {
	return PluginStats{Calls: p.calls.Load(), Instances: p.instances.Load(), Resets: p.pool.resets.Load()}
}

// Resettable reports whether the plugin's instances are reset and reused
// between calls, and if not, why.
func (p *Plugin) Resettable() (bool, string) { return p.resettable, p.fresh }

// SHA256Hex returns the hex sha256 of b, the digest plugins are known by.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Load compiles wasm (or returns the copy compiled before with the same
// bytes and limits) after checking the ABI it speaks.
func (h *Host) Load(ctx context.Context, wasm []byte, limits Limits) (*Plugin, error) {
	if limits.MaxPages == 0 || limits.MaxPages > 65536 {
		return nil, fmt.Errorf("host: memory cap of %d pages is out of range (1 to 65536)", limits.MaxPages)
	}
	key := compileKey{sha: SHA256Hex(wasm), maxPages: limits.MaxPages}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errors.New("host: closed")
	}
	if p, ok := h.compiled[key]; ok {
		return p, nil
	}
	mi, err := h.check(wasm)
	if err != nil {
		return nil, err
	}
	p := &Plugin{SHA256: key.sha, Exports: mi.exports, host: h, limits: limits, wasm: wasm}
	p.pool = newPool(p, max(2, runtime.GOMAXPROCS(0)))
	p.resettable, p.fresh = mi.resettable()
	p.hasMemory = mi.memories > 0
	if p.resettable {
		if p.wasm, p.globalNames, err = withGlobalExports(wasm, mi); err != nil {
			p.resettable, p.fresh, p.wasm = false, err.Error(), wasm
		}
	}
	if p.rt, p.compiled, err = h.newRuntime(ctx, limits, p.wasm, true); err != nil {
		return nil, err
	}
	if err := checkImports(p.rt, p.compiled, mi); err != nil {
		_ = p.rt.Close(ctx)
		return nil, err
	}
	p.hsInit = mi.hsInit
	h.compiled[key] = p
	return p, nil
}

// check reads the plugin's imports and exports (without compiling it) and
// refuses imports of another 12fa ABI version or of 12fa functions that do
// not exist.
func (h *Host) check(wasm []byte) (*moduleInterface, error) {
	mi, err := readInterface(wasm)
	if err != nil {
		return nil, fmt.Errorf("host: %w: %v", ErrInvalidPlugin, err)
	}
	for _, imp := range mi.imports {
		v, ours := abi.NamespaceVersion(imp.module)
		if !ours {
			continue
		}
		if v != abi.Version {
			return nil, fmt.Errorf("host: plugin speaks abi v%d (imports %s.%s), host supports v%d: %w",
				v, imp.module, imp.name, abi.Version, ErrABIVersion)
		}
		if !isHostFunction(imp.name) {
			return nil, fmt.Errorf("host: plugin imports %s.%s, which abi v%d does not define: %w",
				imp.module, imp.name, abi.Version, ErrInvalidPlugin)
		}
	}
	return mi, nil
}

// checkImports refuses, at load, a plugin that imports what no module of
// rt provides (another host's functions, a second module to link with,
// memories, tables or globals), or a provided function with another
// signature, naming every such import. Without it the plugin would load
// and fail at its first call.
func checkImports(rt wazero.Runtime, compiled wazero.CompiledModule, mi *moduleInterface) error {
	missing := slices.Clone(mi.otherImports)
	for _, def := range compiled.ImportedFunctions() {
		module, name, _ := def.Import()
		what := module + "." + name
		mod := rt.Module(module)
		if mod == nil {
			missing = append(missing, what)
			continue
		}
		have, ok := mod.ExportedFunctionDefinitions()[name]
		switch {
		case !ok:
			missing = append(missing, what)
		case !slices.Equal(have.ParamTypes(), def.ParamTypes()) || !slices.Equal(have.ResultTypes(), def.ResultTypes()):
			missing = append(missing, fmt.Sprintf("%s with signature %s (12fa's is %s)", what, signature(def), signature(have)))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("host: %w: %s (12fa provides WASI, Extism's kernel %q and %q only)",
		ErrUnsupportedImport, strings.Join(missing, ", "), "extism:host/env", abi.Namespace)
}

func signature(d api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(out, ", ") + ")"
	}
	return names(d.ParamTypes()) + " -> " + names(d.ResultTypes())
}
