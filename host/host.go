package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	extism "github.com/extism/go-sdk"
	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
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

	closers sync.WaitGroup // instances being closed in the background
	// bg is the context of background work (spare instances); Close
	// cancels it.
	bg       context.Context
	cancelBg context.CancelFunc

	mu       sync.Mutex
	compiled map[compileKey]*Plugin
	closed   bool
	closing  atomic.Bool // set before Close takes mu; read by refills
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

func (h *Host) isClosed() bool { return h.closing.Load() }

// dropSpares closes every spare instance, giving their memory budget back.
func (h *Host) dropSpares() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.compiled {
		if in := p.takeSpare(); in != nil {
			h.closeLater(in)
		}
	}
}

// closeLater closes an instance that has served its call, off the caller's
// path. Close waits for every one of them.
func (h *Host) closeLater(in *instance) {
	h.closers.Add(1)
	go func() {
		defer h.closers.Done()
		in.close()
	}()
}

// runtimeConfig is the one wazero configuration every runtime of the host
// uses.
func (h *Host) runtimeConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().WithCompilationCache(h.cache).WithCloseOnContextDone(true)
}

// Close releases every compiled plugin and the cache handle. No call may be
// in flight.
func (h *Host) Close(ctx context.Context) error {
	h.closing.Store(true)
	h.cancelBg()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	// Refills first (they may hand instances to closeLater), then the
	// instances being closed, then the compiled plugins.
	for _, p := range h.compiled {
		for p.refilling.Load() {
			runtime.Gosched() // a refill finishing; it sees closing and stops
		}
	}
	h.closers.Wait()
	var errs []error
	for _, p := range h.compiled {
		if in := p.takeSpare(); in != nil {
			in.close()
		}
		errs = append(errs, p.compiled.Close(ctx))
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

// Plugin is a compiled plugin. Make calls to it with Call; each call gets a
// fresh instance.
type Plugin struct {
	// SHA256 is the hex digest of the plugin's bytes.
	SHA256 string
	// Exports lists the functions the plugin exports.
	Exports map[string]bool

	host     *Host
	limits   Limits
	compiled *extism.CompiledPlugin

	// spare holds an instance made ahead of time for the next call.
	spare     chan *instance
	refilling atomic.Bool
	inflight  atomic.Int32
	// lastTimeout bounds the prepare call of a spare instance: the timeout
	// of the plugin's latest call.
	lastTimeout atomic.Int64
	// How long the latest successful call, instantiation and prepare took
	// (ns): they decide whether a spare is worth preparing.
	lastCallNS, instantiateNS, prepareNS atomic.Int64
}

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
	exports, err := h.check(wasm)
	if err != nil {
		return nil, err
	}
	manifest := extism.Manifest{
		Wasm:   []extism.Wasm{extism.WasmData{Data: wasm}},
		Memory: &extism.ManifestMemory{MaxPages: limits.MaxPages, MaxVarBytes: 0, MaxHttpResponseBytes: 0},
	}
	cp, err := extism.NewCompiledPlugin(ctx, manifest, extism.PluginConfig{
		RuntimeConfig: h.runtimeConfig(),
		EnableWasi:    true,
	}, h.hostFunctions())
	if err != nil {
		return nil, fmt.Errorf("host: compile plugin: %w: %s", ErrInvalidPlugin, firstLine(err.Error()))
	}
	p := &Plugin{SHA256: key.sha, Exports: exports, host: h, limits: limits, compiled: cp, spare: make(chan *instance, 1)}
	h.compiled[key] = p
	return p, nil
}

// check reads the plugin's imports and exports (without compiling it) and
// refuses imports of another 12fa ABI version or of 12fa functions that do
// not exist.
func (h *Host) check(wasm []byte) (map[string]bool, error) {
	mi, err := readInterface(wasm)
	if err != nil {
		return nil, fmt.Errorf("host: %w: %v", ErrInvalidPlugin, err)
	}
	known := make(map[string]bool)
	for _, f := range h.hostFunctions() {
		known[f.Name] = true
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
		if !known[imp.name] {
			return nil, fmt.Errorf("host: plugin imports %s.%s, which abi v%d does not define: %w",
				imp.module, imp.name, abi.Version, ErrInvalidPlugin)
		}
	}
	return mi.exports, nil
}
