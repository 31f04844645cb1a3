package egress

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Secret is a value a step uses without ever holding it: the host puts it
// into the requests to the origins it is granted for, and takes it out of
// every response before the step (or the journal) sees it.
type Secret struct {
	// Name is the manifest's name for it (a key of [secrets]).
	Name string
	// Value is the secret, read from the host's environment at start-up;
	// "" when it is missing (a request that needs it is refused).
	Value string
	// Origins are where it may go; each is within the step's allow.hosts.
	Origins []Origin
	// Header, when set, is the header the host sets on every request to
	// Origins: Template with "{secret}" replaced by Value.
	Header   string
	Template string
}

// placeholder matches "{{secret.NAME}}": a step names a secret so in a
// header value of its own, and the host puts the value there for the
// origins the secret is granted for.
var placeholder = regexp.MustCompile(`\{\{\s*secret\.([A-Za-z0-9_-]+)\s*\}\}`)

// Placeholder returns how a step names secret name in a header value.
func Placeholder(name string) string { return "{{secret." + name + "}}" }

// mentionsSecret reports whether s, or s with its %-escapes undone, holds
// a placeholder. (The host never fills one in outside a header; this only
// makes such a request fail clearly instead of sending the placeholder.)
func mentionsSecret(s string) bool {
	if placeholder.MatchString(s) {
		return true
	}
	u, err := url.QueryUnescape(s)
	return err == nil && u != s && placeholder.MatchString(u)
}

// grantedFor reports whether the secret may go to u.
func (s *Secret) grantedFor(u *url.URL) bool {
	for _, o := range s.Origins {
		if o.matches(u) {
			return true
		}
	}
	return false
}

// value is what the secret's header holds.
func (s *Secret) value() string {
	if s.Template == "" {
		return s.Value
	}
	return strings.ReplaceAll(s.Template, "{secret}", s.Value)
}

// redaction replaces a secret's bytes, and their base64 (a server that
// echoes a Basic credential back), in what a step gets.
type redaction struct{ old, new string }

func redactionsOf(secrets []Secret) []redaction {
	var out []redaction
	for _, s := range secrets {
		if len(s.Value) < 4 {
			continue // too short to look for without mangling text (refused at load)
		}
		mark := "[redacted:" + s.Name + "]"
		out = append(out, redaction{s.Value, mark})
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b := enc.EncodeToString([]byte(s.Value)); b != s.Value {
				out = append(out, redaction{b, mark})
			}
		}
	}
	// Longest first: a secret that holds another is replaced whole.
	slices.SortStableFunc(out, func(a, b redaction) int { return len(b.old) - len(a.old) })
	return out
}

func redact(s string, rs []redaction) string {
	for _, r := range rs {
		if strings.Contains(s, r.old) {
			s = strings.ReplaceAll(s, r.old, r.new)
		}
	}
	return s
}
