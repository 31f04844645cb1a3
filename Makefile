# 12fa — see README.md. `make help` lists the targets.

GO        ?= go
BIN       := bin/12fa
EXAMPLE   := plugins/examples/plugin-manifest.toml
EXAMPLE_DIR ?= .example-project
GO_PLUGINS := analyze plan report effect gopanic fsprobe gonoop ask go-greet fetch agent
WAT_PLUGINS := $(wildcard plugins/examples/wat/*.wat)
C_PLUGINS := c-greet
RUST_PLUGINS := rust-greet
GUEST_GOFLAGS := -trimpath -buildvcs=false -ldflags=-s -buildmode=c-shared
# C steps: clang with Debian's wasi-libc (packages clang lld wasi-libc
# libclang-rt-dev-wasm32).
CLANG     ?= clang
C_GUEST_FLAGS := --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all -Wall -Wextra -Werror -Ipdk/c
# Rust steps: Debian's rustc, whose wasm32 standard library comes from the
# package libstd-rust-dev-wasm32 (a rustup toolchain earlier on PATH
# usually has no wasm32 target, and none can be downloaded here).
RUSTC     ?= /usr/bin/rustc
RUST_GUEST_FLAGS := --edition 2021 --target wasm32-wasi -O -C strip=symbols --remap-path-prefix=$(CURDIR)=.
RUST_BUILD := build/rust
# AssemblyScript steps: assemblyscript and @extism/as-pdk from npm, pinned
# in pdk/as/package-lock.json.
AS_PLUGINS := as-greet
ASC       := pdk/as/node_modules/.bin/asc
AS_GUEST_FLAGS := --path pdk/as/node_modules --optimize --initialMemory 16 --use abort=pdk/as/index/abortStep
# The JS step runner: pdk/js/runner.c with QuickJS, whose C source comes
# from the npm package qjsc (pinned in pdk/js/package-lock.json; its install
# script is not run). QuickJS is built as for Emscripten (no threads, no
# computed gotos); wasm has only round-to-nearest, so the other rounding
# modes QuickJS names are given values fesetround refuses.
QJS_DIR   := pdk/js/node_modules/qjsc/deps/quickjs_2021_03_27
QJS_BUILD := build/quickjs
QJS_SRC   := quickjs libregexp libunicode cutils
QJS_FLAGS := --target=wasm32-wasi -O2 -D_GNU_SOURCE -DCONFIG_VERSION=\"2021-03-27\" -DEMSCRIPTEN \
	-DFE_DOWNWARD=0x400 -DFE_UPWARD=0x800 -Wno-everything
JS_RUNNER := internal/jsrunner/js-runner.wasm

.PHONY: help build test test-unit test-integration example example-agent example-cluster wasm fmt lint vet deps check bench clean

help:
	@echo "make example           build 12fa and run the example workflow end to end"
	@echo "make example-agent     the agent workflow (model plans, person approves, change, go test) against a local test server"
	@echo "make example-cluster   two workers on a throwaway PostgreSQL, 100 runs, one worker SIGKILLed halfway"
	@echo "make test              all tests (unit with -race, then end-to-end)"
	@echo "make test-unit         unit tests with -race"
	@echo "make test-integration  end-to-end tests of the built binary (tests/)"
	@echo "make wasm              rebuild every example plugin (.wasm) from source"
	@echo "make bench             durable-step speed against this disk's fsync floor (writes bench.json)"
	@echo "make check             fmt + vet + import rules + go mod tidy, then a clean tree"

build:
	$(GO) build -o $(BIN) ./cmd/12fa

example-agent: build
	BIN=$(BIN) sh plugins/examples/agent/example.sh

example-cluster: build
	BIN=$(BIN) sh plugins/examples/cluster/example.sh

example: build
	@mkdir -p $(EXAMPLE_DIR)
	$(BIN) -C $(EXAMPLE_DIR) run --new $(abspath $(EXAMPLE))
	@echo
	$(BIN) -C $(EXAMPLE_DIR) status

# Tests that need a tool a machine lacks (a guest toolchain, git) skip and
# list themselves in $(SKIP_LOG), printed at the end; .ci/run sets
# TWELVEFA_REQUIRE_TOOLS=1, which makes them fail instead.
SKIP_LOG := $(CURDIR)/bin/skipped.txt
export TWELVEFA_SKIP_LOG := $(SKIP_LOG)

test: test-unit test-integration
	@if [ -s $(SKIP_LOG) ]; then cat $(SKIP_LOG); else echo "nothing skipped"; fi

test-unit:
	@mkdir -p bin && rm -f $(SKIP_LOG)
	$(GO) test -race -count=1 ./...

test-integration: build
	$(GO) test -count=1 -tags integration ./tests/...

wasm:
	@for p in $(GO_PLUGINS); do \
		echo "go build plugins/examples/$$p/$$p.wasm"; \
		(cd plugins/examples/$$p && GOOS=wasip1 GOARCH=wasm $(GO) build $(GUEST_GOFLAGS) -o $$p.wasm .) || exit 1; \
	done
	@for f in $(WAT_PLUGINS); do \
		echo "wat2wasm $$f"; \
		wat2wasm $$f -o $${f%.wat}.wasm || exit 1; \
	done
	@for p in $(C_PLUGINS); do \
		echo "clang plugins/examples/$$p/$$p.wasm"; \
		$(CLANG) $(C_GUEST_FLAGS) -o plugins/examples/$$p/$$p.wasm plugins/examples/$$p/main.c || exit 1; \
	done
	@mkdir -p $(RUST_BUILD)
	@echo "rustc pdk/rust (twelvefa)"
	@$(RUSTC) $(RUST_GUEST_FLAGS) --crate-type rlib --crate-name twelvefa -o $(RUST_BUILD)/libtwelvefa.rlib pdk/rust/src/lib.rs
	@for p in $(RUST_PLUGINS); do \
		echo "rustc plugins/examples/$$p/$$p.wasm"; \
		$(RUSTC) $(RUST_GUEST_FLAGS) --crate-type cdylib --extern twelvefa=$(RUST_BUILD)/libtwelvefa.rlib \
			-o plugins/examples/$$p/$$p.wasm plugins/examples/$$p/main.rs || exit 1; \
	done
	@[ -x $(ASC) ] || (cd pdk/as && npm ci --no-audit --no-fund)
	@for p in $(AS_PLUGINS); do \
		echo "asc plugins/examples/$$p/$$p.wasm"; \
		$(ASC) plugins/examples/$$p/index.ts $(AS_GUEST_FLAGS) -o plugins/examples/$$p/$$p.wasm || exit 1; \
	done
	@[ -d $(QJS_DIR) ] || (cd pdk/js && npm ci --ignore-scripts --no-audit --no-fund)
	@mkdir -p $(QJS_BUILD)
	@for f in $(QJS_SRC); do \
		[ $(QJS_BUILD)/$$f.o -nt $(QJS_DIR)/$$f.c ] && continue; \
		echo "clang $(QJS_DIR)/$$f.c"; \
		$(CLANG) $(QJS_FLAGS) -c $(QJS_DIR)/$$f.c -o $(QJS_BUILD)/$$f.o || exit 1; \
	done
	@echo "clang $(JS_RUNNER)"
	@$(CLANG) $(C_GUEST_FLAGS) -isystem $(QJS_DIR) -Wl,--stack-first -Wl,-z,stack-size=1048576 \
		-o $(JS_RUNNER) pdk/js/runner.c $(addprefix $(QJS_BUILD)/,$(addsuffix .o,$(QJS_SRC))) -lm

# With PostgreSQL's server installed, the bench adds its rows, measured on
# a throwaway server (scripts/with-postgres.sh), beside DBOS Transact Go's
# on the same server when its harness builds (internal/bench/dbos, a module
# of its own: it needs the Go module proxy).
bench: build
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		DBOS=""; if $(GO) -C internal/bench/dbos build -o $(CURDIR)/bin/dbos-bench . ; then DBOS=$(CURDIR)/bin/dbos-bench; \
		else echo "the DBOS harness did not build: its rows are left out"; fi; \
		DBOS=$$DBOS sh scripts/with-postgres.sh sh -c '$(BIN) bench --pg "$$TWELVEFA_PG_URL" --dbos "$$DBOS" --out bench.json'; \
	else \
		echo "no PostgreSQL server (apt-get install postgresql): its rows are left out"; \
		$(BIN) bench --out bench.json; \
	fi

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...
	cd pdk/go && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	cd plugins/examples && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

deps:
	$(GO) test -count=1 -run TestImportDirection ./internal/deps/

check: fmt vet deps
	$(GO) mod tidy
	git diff --exit-code --stat

clean:
	rm -rf bin $(EXAMPLE_DIR)
