// Command gonoop is the Go no-op step of the benchmarks: it returns an
// empty object without reading its input.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gonoop.wasm .
package main

import pdk "github.com/12fa/12fa/pdk/go"

//go:wasmexport run
func run() int32 {
	if err := pdk.Output(struct{}{}); err != nil {
		return 1
	}
	return 0
}

func main() {}
