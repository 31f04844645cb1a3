package runtime

import (
	"testing"

	"github.com/12fa/12fa/abi"
)

func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://API.example.com:8443/v1/x?q=1": "https://api.example.com:8443",
		"http://user:pw@host/p":                 "http://host",
		"HTTP://h#frag":                         "http://h",
		"not a url":                             "",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCallKey: requests that differ in any part the step chose hash apart;
// header names are case-insensitive and their order does not matter.
func TestCallKey(t *testing.T) {
	base := abi.HTTPRequest{URL: "https://x/a", Headers: map[string][]string{"A": {"1"}, "b": {"2"}}, Body: "x"}
	k := callKey("POST", &base)
	same := abi.HTTPRequest{URL: "https://x/a", Headers: map[string][]string{"b": {"2"}, "a": {"1"}}, Body: "x"}
	if callKey("POST", &same) != k {
		t.Error("the same request hashed apart")
	}
	for name, r := range map[string]abi.HTTPRequest{
		"url":          {URL: "https://x/b", Headers: base.Headers, Body: "x"},
		"header value": {URL: base.URL, Headers: map[string][]string{"A": {"1"}, "b": {"3"}}, Body: "x"},
		"header split": {URL: base.URL, Headers: map[string][]string{"A": {"1", "b"}}, Body: "x"},
		"body":         {URL: base.URL, Headers: base.Headers, Body: "y"},
	} {
		if callKey("POST", &r) == k {
			t.Errorf("%s: hashed like the base", name)
		}
	}
	if callKey("GET", &base) == k {
		t.Error("method: hashed like the base")
	}
}

// TestCallKeyStable: names that differ only in case hash the same way
// every time (map order does not leak into the key).
func TestCallKeyStable(t *testing.T) {
	r := abi.HTTPRequest{URL: "https://x/", Headers: map[string][]string{"X-A": {"1"}, "x-a": {"2"}, "X-a": {"3"}}}
	k := callKey("GET", &r)
	for range 50 {
		if callKey("GET", &r) != k {
			t.Fatal("the key changed between calls")
		}
	}
	if execKey(&abi.ExecRequest{Command: "go", Env: map[string]string{"A": "1"}}) == execKey(&abi.ExecRequest{Command: "go", Args: []string{"A", "1"}}) {
		t.Error("env and args hashed alike")
	}
}
