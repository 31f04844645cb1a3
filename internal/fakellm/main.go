// Command fakellm is a local OpenAI-compatible chat completions server for
// the agent example (make example-agent): it needs a bearer key (any) and
// answers every request with the same plan, a Farewell function for the
// example's greet package. It writes its base URL to -url-file and logs
// each request it answers.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
)

const farewell = `// Package greet says hello. The agent workflow adds Farewell.
package greet

// Greet says hello to name.
func Greet(name string) string { return "Hello, " + name + "!" }

// Farewell says goodbye to name.
func Farewell(name string) string { return "Goodbye, " + name + "!" }
`

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	urlFile := flag.String("url-file", "", "file to write the base URL to")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(base+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	log.SetFlags(0)
	log.Printf("fakellm: listening on %s", base)
	n := 0
	http.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || len(r.Header.Get("Authorization")) < 12 {
			http.Error(w, `{"error":{"message":"missing API key"}}`, http.StatusUnauthorized)
			return
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct{ Role, Content string }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
			http.Error(w, `{"error":{"message":"not a chat completions request"}}`, http.StatusBadRequest)
			return
		}
		n++
		log.Printf("fakellm: request %d: model %q, %d messages", n, req.Model, len(req.Messages))
		plan, _ := json.Marshal(map[string]string{"summary": "add Farewell(name) next to Greet", "path": "greet.go", "content": farewell})
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-fake-%d","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}]}`,
			n, req.Model, mustJSON(string(plan)))
	})
	log.Fatal(http.Serve(ln, nil))
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
