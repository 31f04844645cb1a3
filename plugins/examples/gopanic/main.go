// Command gopanic is a test fixture: a Go step that panics, to show that the
// panic message reaches the step's log.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gopanic.wasm .
package main

import pdk "github.com/12fa/12fa/pdk/go"

//go:wasmexport run
func run() int32 {
	return pdk.Run(func(env *pdk.Envelope) (any, error) {
		panic("gopanic fixture: something went badly wrong in " + env.Step)
	})
}

func main() {}
