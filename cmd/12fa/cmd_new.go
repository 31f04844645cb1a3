package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/12fa/12fa/pdk"
)

func newNewCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Scaffold new things (steps)",
	}
	var lang, manifestPath, sdk string
	step := &cobra.Command{
		Use:   "step NAME",
		Short: "Scaffold a buildable step in steps/NAME and add it to the manifest",
		Long: `Scaffold a buildable step in steps/NAME (steps/NAME.js for JavaScript)
with the language's kit, a build script, and a [[step]] entry appended to
the manifest (created if missing).

Languages: js (no build), c (clang + wasi-libc), rust (Debian's rustc with
libstd-rust-dev-wasm32), as (AssemblyScript, npm), go (Go's wasip1 port;
needs a 12fa checkout for the Go kit: --sdk, found upward by default).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.projectDir()
			if err != nil {
				return err
			}
			return scaffoldStep(g, dir, args[0], lang, manifestPath, sdk)
		},
	}
	step.Flags().StringVar(&lang, "lang", "js", "language: js, c, rust, as or go")
	step.Flags().StringVar(&manifestPath, "manifest", "plugin-manifest.toml", "manifest to add the step to")
	step.Flags().StringVar(&sdk, "sdk", "", "a 12fa checkout, for the Go kit (--lang go)")
	cmd.AddCommand(step)
	return cmd
}

var stepNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// scaffoldFile is one file of a new step, relative to the project.
type scaffoldFile struct {
	path string
	body string
	exec bool
}

func scaffoldStep(g *globalOptions, dir, name, lang, manifestPath, sdk string) error {
	if !stepNameRe.MatchString(name) {
		return fmt.Errorf("step name %q: use 1-64 letters, digits, '_' or '-', starting with a letter or digit", name)
	}
	kit := func(path string) string {
		b, err := fs.ReadFile(pdk.Files, path)
		if err != nil {
			panic(err) // embedded at build time
		}
		return string(b)
	}
	base := filepath.ToSlash(filepath.Join("steps", name))
	plugin := base + "/" + name + ".wasm"
	var files []scaffoldFile
	build := func(lines ...string) scaffoldFile {
		return scaffoldFile{path: base + "/build.sh", exec: true, body: "#!/bin/sh\n# Builds " + name + ".wasm; run from anywhere.\nset -eu\ncd \"$(dirname \"$0\")\"\n" + strings.Join(lines, "\n") + "\n"}
	}
	switch lang {
	case "js":
		plugin = base + ".js"
		files = []scaffoldFile{{path: plugin, body: strings.ReplaceAll(jsTemplate, "NAME", name)}}
	case "c":
		files = []scaffoldFile{
			{path: base + "/main.c", body: strings.ReplaceAll(cTemplate, "NAME", name)},
			{path: base + "/12fa.h", body: kit("c/12fa.h")},
			build("clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all -Wall -Wextra -I. -o " + name + ".wasm main.c"),
		}
	case "rust":
		files = []scaffoldFile{
			{path: base + "/main.rs", body: strings.ReplaceAll(rustTemplate, "NAME", name)},
			{path: base + "/twelvefa/lib.rs", body: kit("rust/src/lib.rs")},
			{path: base + "/twelvefa/json.rs", body: kit("rust/src/json.rs")},
			build("RUSTC=${RUSTC:-/usr/bin/rustc}  # Debian's, with libstd-rust-dev-wasm32",
				"FLAGS=\"--edition 2021 --target wasm32-wasi -O\"",
				"$RUSTC $FLAGS --crate-type rlib --crate-name twelvefa -o libtwelvefa.rlib twelvefa/lib.rs",
				"$RUSTC $FLAGS -C strip=symbols --crate-type cdylib --extern twelvefa=libtwelvefa.rlib -o "+name+".wasm main.rs"),
		}
	case "as":
		files = []scaffoldFile{
			{path: base + "/index.ts", body: strings.ReplaceAll(asTemplate, "NAME", name)},
			{path: base + "/pdk/index.ts", body: kit("as/index.ts")},
			{path: base + "/pdk/json.ts", body: kit("as/json.ts")},
			{path: base + "/package.json", body: kit("as/package.json")},
			{path: base + "/package-lock.json", body: kit("as/package-lock.json")},
			build("[ -d node_modules ] || npm ci --no-audit --no-fund",
				"node_modules/.bin/asc index.ts --path node_modules --optimize --initialMemory 16 --use abort=pdk/index/abortStep -o "+name+".wasm"),
		}
	case "go":
		root, err := goSDK(dir, sdk)
		if err != nil {
			return err
		}
		files = []scaffoldFile{
			{path: base + "/main.go", body: strings.ReplaceAll(goTemplate, "NAME", name)},
			{path: base + "/go.mod", body: fmt.Sprintf("module %s\n\ngo 1.24\n\nrequire github.com/12fa/12fa/pdk/go v0.0.0\n\nrequire github.com/12fa/12fa v0.0.0 // indirect\n\nreplace (\n\tgithub.com/12fa/12fa => %s\n\tgithub.com/12fa/12fa/pdk/go => %s\n)\n",
				name, root, filepath.Join(root, "pdk", "go"))},
			build("go mod tidy", "GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags=-s -buildmode=c-shared -o "+name+".wasm ."),
		}
	default:
		return fmt.Errorf("--lang %q: choose js, c, rust, as or go", lang)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f.path)); err == nil {
			return fmt.Errorf("%s exists; not overwriting it", f.path)
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if f.exec {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(f.body), mode); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "wrote %s\n", f.path)
	}
	mpath := manifestPath
	if !filepath.IsAbs(mpath) {
		mpath = filepath.Join(dir, mpath)
	}
	entry := fmt.Sprintf("\n[[step]]\nid = %q\nplugin = %q\nidempotent = true\ninput = { name = \"world\" }\n", name, plugin)
	if _, err := os.Stat(mpath); errors.Is(err, fs.ErrNotExist) {
		entry = fmt.Sprintf("[workflow]\nname = %q\n", filepath.Base(dir)) + entry
	}
	mf, err := os.OpenFile(mpath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := mf.WriteString(entry); err != nil {
		mf.Close()
		return err
	}
	if err := mf.Close(); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "added step %q to %s\n", name, manifestPath)
	if lang != "js" {
		fmt.Fprintf(g.stdout, "build it: sh %s/build.sh\n", base)
	}
	fmt.Fprintf(g.stdout, "run it:   12fa run %s\n", manifestPath)
	return nil
}

// goSDK finds the 12fa checkout whose pdk/go a Go step builds against: the
// one given, else the first upward from the project.
func goSDK(dir, sdk string) (string, error) {
	if sdk != "" {
		abs, err := filepath.Abs(sdk)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(filepath.Join(abs, "pdk", "go", "go.mod")); err != nil {
			return "", fmt.Errorf("--sdk %s: no pdk/go/go.mod there", sdk)
		}
		return abs, nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "pdk", "go", "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("--lang go needs a 12fa checkout for the Go kit (github.com/12fa/12fa/pdk/go): pass --sdk DIR")
		}
	}
}

const jsTemplate = `// NAME: a 12fa step in JavaScript (see pdk/js/README.md for the host API).
function run(env) {
  const name = (env.input && env.input.name) || "world";
  host.log("info", "greeting " + name);
  return { greeting: "Hello, " + name + "!" };
}
`

const cTemplate = `/* NAME: a 12fa step in C (see 12fa.h). */
#include "12fa.h"

TFA_EXPORT("run") int32_t run(void) {
	size_t n;
	char *env = tfa_input(&n);
	size_t in_n = 0;
	const char *in = tfa_json_field(env, env + n, "input", &in_n);
	char *name = NULL;
	if (in && in_n && in[0] == '{') {
		size_t v_n;
		const char *v = tfa_json_field(in, in + in_n, "name", &v_n);
		name = v ? tfa_json_string(v, v_n) : NULL;
	}
	if (!name) name = "world";
	tfa_buf line = {0};
	tfa_buf_printf(&line, "greeting %s", name);
	tfa_log(TFA_INFO, line.p);
	tfa_buf out = {0};
	tfa_buf_str(&out, "{\"greeting\":");
	tfa_buf greeting = {0};
	tfa_buf_printf(&greeting, "Hello, %s!", name);
	tfa_buf_json(&out, greeting.p);
	tfa_buf_str(&out, "}");
	tfa_output(out.p, out.n);
	return 0;
}
`

const rustTemplate = `//! NAME: a 12fa step in Rust (see twelvefa/lib.rs).

use twelvefa as tfa;
use twelvefa::{obj, Value};

#[no_mangle]
pub extern "C" fn run() -> i32 {
    tfa::run(|env| {
        let name = env.get("input").get("name").as_str().unwrap_or("world").to_string();
        tfa::log(tfa::Level::Info, &format!("greeting {}", name));
        Ok(obj(vec![("greeting", Value::from(format!("Hello, {}!", name)))]))
    })
}
`

const asTemplate = `// NAME: a 12fa step in AssemblyScript (see pdk/index.ts).
import * as tfa from "./pdk/index";

export function run(): i32 {
  const env = tfa.envelope();
  let name = env.get("input").get("name").s;
  if (name == "") name = "world";
  tfa.log(tfa.INFO, "greeting " + name);
  return tfa.output("{\"greeting\":" + tfa.quote("Hello, " + name + "!") + "}");
}
`

const goTemplate = `// Command NAME is a 12fa step in Go (see the Go kit, pdk/go).
package main

import (
	"encoding/json"

	pdk "github.com/12fa/12fa/pdk/go"
)

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in struct {
			Name string ` + "`json:\"name\"`" + `
		}
		_ = json.Unmarshal(env.Input, &in)
		if in.Name == "" {
			in.Name = "world"
		}
		pdk.Logf(pdk.Info, "greeting %s", in.Name)
		return map[string]string{"greeting": "Hello, " + in.Name + "!"}, nil
	})
}

func main() {}
`
