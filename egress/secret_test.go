package egress_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/egress"
)

const secretValue = "sk-test-0123456789abcdef"

// TestSecrets: the host puts a secret into the requests to the origins it
// is granted for, in its own header or where the step's header names it;
// anywhere else (another origin, a redirect to one, the URL, the body) it
// never goes; and what comes back never holds it, plain or in base64.
func TestSecrets(t *testing.T) {
	var seen []string
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, fmt.Sprint(r.Header)+r.URL.String())
	})
	echo := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, other.URL+"/landed", http.StatusTemporaryRedirect)
			return
		}
		// Reflect every credential, plain and in base64, in headers and body.
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		w.Header().Set("X-Echo-B64", base64.StdEncoding.EncodeToString([]byte(r.Header.Get("X-Api-Key"))))
		fmt.Fprintf(w, "auth=%s key=%s", r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
	})
	api := origin(t, echo.URL)
	p := egress.Policy{Origins: []egress.Origin{api, origin(t, other.URL)}, Private: loopback, Secrets: []egress.Secret{
		{Name: "openai", Value: secretValue, Origins: []egress.Origin{api}, Header: "Authorization", Template: "Bearer {secret}"},
		{Name: "key", Value: secretValue + "-2", Origins: []egress.Origin{api}},
	}}
	resp := do(t, p, abi.HTTPRequest{URL: echo.URL + "/", Headers: map[string][]string{"X-Api-Key": {egress.Placeholder("key")}, "Authorization": {"Bearer guest-guess"}}})
	if resp.Error != nil || resp.Body != "auth=Bearer [redacted:openai] key=[redacted:key]" {
		t.Fatalf("granted: %+v", resp)
	}
	if resp.Headers["x-echo"][0] != "Bearer [redacted:openai]" || strings.Contains(resp.Headers["x-echo-b64"][0], base64.StdEncoding.EncodeToString([]byte(secretValue+"-2"))) {
		t.Errorf("headers not redacted: %v", resp.Headers)
	}

	for name, req := range map[string]abi.HTTPRequest{
		"placeholder for another origin": {URL: other.URL + "/", Headers: map[string][]string{"X-Api-Key": {egress.Placeholder("key")}}},
		"placeholder in the query":       {URL: echo.URL + "/?k=" + egress.Placeholder("key")},
		"placeholder in the body":        {Method: "POST", URL: echo.URL + "/", Body: "key=" + egress.Placeholder("key")},
		"a secret not granted":           {URL: echo.URL + "/", Headers: map[string][]string{"X-Api-Key": {egress.Placeholder("github")}}},
	} {
		before := echo.hits.Load()
		wantCode(t, do(t, p, req), abi.CauseSecretNotGranted)
		if echo.hits.Load() != before || len(seen) != 0 {
			t.Errorf("%s: sent anyway", name)
		}
	}

	// A redirect to another origin gets neither the host's header nor the
	// step's placeholder filled in.
	resp = do(t, p, abi.HTTPRequest{URL: echo.URL + "/redirect", Headers: map[string][]string{"X-Custom": {egress.Placeholder("key")}}})
	if resp.Error != nil || len(seen) != 1 || strings.Contains(seen[0], secretValue) || strings.Contains(seen[0], "Bearer") {
		t.Errorf("redirect: %+v, the other server saw %q", resp, seen)
	}

	p.Secrets[0].Value = ""
	wantCode(t, do(t, p, abi.HTTPRequest{URL: echo.URL + "/"}), abi.CauseSecretMissing)
}

// TestSecretWordsPass: a body that merely talks about secrets, or holds
// other {{templates}}, is sent; only a placeholder, plain or %-escaped, is
// refused.
func TestSecretWordsPass(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	p := egress.Policy{Origins: []egress.Origin{origin(t, s.URL)}, Private: loopback}
	if resp := do(t, p, abi.HTTPRequest{Method: "POST", URL: s.URL + "/", Body: `{"prompt": "keep {{name}} secret"}`}); resp.Error != nil {
		t.Errorf("a body about secrets: %v", resp.Error)
	}
	wantCode(t, do(t, p, abi.HTTPRequest{URL: s.URL + "/?k=%7B%7Bsecret.key%7D%7D"}), abi.CauseSecretNotGranted)
}
