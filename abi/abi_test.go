package abi_test

import (
	"testing"

	"github.com/12fa/12fa/abi"
)

func TestNamespaceVersion(t *testing.T) {
	tests := []struct {
		module  string
		version int
		ours    bool
	}{
		{abi.Namespace, abi.Version, true},
		{"12fa:v2", 2, true},
		{"12fa:vx", -1, true},
		{"extism:host/env", 0, false},
		{"wasi_snapshot_preview1", 0, false},
	}
	for _, tc := range tests {
		v, ours := abi.NamespaceVersion(tc.module)
		if v != tc.version || ours != tc.ours {
			t.Errorf("NamespaceVersion(%q) = %d, %v; want %d, %v", tc.module, v, ours, tc.version, tc.ours)
		}
	}
}

func TestParseErrorDoc(t *testing.T) {
	no := false
	tests := []struct {
		in   string
		want abi.ErrorDoc
		text string
	}{
		{`{"code":"bad_input","message":"no goal","retryable":false}`, abi.ErrorDoc{Code: "bad_input", Message: "no goal", Retryable: &no}, "bad_input: no goal"},
		{`plain words`, abi.ErrorDoc{Message: "plain words"}, "plain words"},
		{`{"code":"x"}`, abi.ErrorDoc{Message: `{"code":"x"}`}, `{"code":"x"}`},
		{`{not json`, abi.ErrorDoc{Message: `{not json`}, `{not json`},
	}
	for _, tc := range tests {
		got := abi.ParseErrorDoc([]byte(tc.in))
		if got.Code != tc.want.Code || got.Message != tc.want.Message || (got.Retryable == nil) != (tc.want.Retryable == nil) {
			t.Errorf("ParseErrorDoc(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.Error() != tc.text {
			t.Errorf("Error() = %q, want %q", got.Error(), tc.text)
		}
	}
}

func FuzzParseErrorDoc(f *testing.F) {
	f.Add([]byte(`{"code":"c","message":"m"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := abi.ParseErrorDoc(b)
		if d.Message == "" && len(b) > 0 {
			t.Fatalf("lost the message of %q", b)
		}
	})
}
