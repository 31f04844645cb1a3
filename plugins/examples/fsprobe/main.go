// Command fsprobe is a test fixture: it performs the file operations its
// input lists and reports each one's result, so that tests can try to
// escape a file grant with ordinary Go file code.
//
// Input: {"ops": [{"op": "read", "path": "/data/x"}, …]}, op one of read,
// write, append, list, mkdirall, remove, rename, symlink, link, truncate,
// stat, lstat, readlink, chtimes, env, dial (TCP to path).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fsprobe.wasm .
package main

import (
	"encoding/json"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	pdk "github.com/12fa/12fa/pdk/go"
)

type op struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	To   string `json:"to"`
	Data string `json:"data"`
}

type result struct {
	OK   bool   `json:"ok"`
	Data string `json:"data,omitempty"`
	Err  string `json:"err,omitempty"`
}

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		var in struct {
			Ops []op `json:"ops"`
		}
		if err := json.Unmarshal(env.Input, &in); err != nil {
			return nil, pdk.FailPermanent("bad_input", "%v", err)
		}
		out := make([]result, 0, len(in.Ops))
		for _, o := range in.Ops {
			data, err := do(o)
			r := result{OK: err == nil, Data: data}
			if err != nil {
				r.Err = err.Error()
			}
			out = append(out, r)
		}
		return map[string]any{"results": out}, nil
	})
}

func do(o op) (string, error) {
	switch o.Op {
	case "read":
		b, err := os.ReadFile(o.Path)
		return string(b), err
	case "write":
		return "", os.WriteFile(o.Path, []byte(o.Data), 0o644)
	case "append":
		f, err := os.OpenFile(o.Path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return "", err
		}
		if _, err := f.WriteString(o.Data); err != nil {
			f.Close()
			return "", err
		}
		return "", f.Close()
	case "list":
		entries, err := os.ReadDir(o.Path)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return strings.Join(names, ","), err
	case "mkdirall":
		return "", os.MkdirAll(o.Path, 0o755)
	case "remove":
		return "", os.Remove(o.Path)
	case "rename":
		return "", os.Rename(o.Path, o.To)
	case "symlink":
		return "", os.Symlink(o.To, o.Path)
	case "link":
		return "", os.Link(o.To, o.Path)
	case "truncate":
		return "", os.Truncate(o.Path, 3)
	case "stat":
		fi, err := os.Stat(o.Path)
		if err != nil {
			return "", err
		}
		return fi.Mode().String(), nil
	case "lstat":
		fi, err := os.Lstat(o.Path)
		if err != nil {
			return "", err
		}
		return fi.Mode().String(), nil
	case "readlink":
		return os.Readlink(o.Path)
	case "chtimes":
		t := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		return "", os.Chtimes(o.Path, t, t)
	case "env":
		return strings.Join(os.Environ(), ","), nil
	case "dial":
		c, err := net.Dial("tcp", o.Path)
		if err != nil {
			return "", err
		}
		return "connected", c.Close()
	}
	return "", os.ErrInvalid
}

func main() {}
