package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/internal/atomicfile"
)

// Answer links: an input-required notification can carry buttons that
// answer a question from the phone (ntfy's "http" action: the device
// posts to the URL). Each URL names the question and one answer, expires,
// and is signed with the project's key, so that `12fa serve --public-url`
// takes the answer from whoever holds the link and refuses a forged,
// altered or expired one; a question answered once refuses the next.

// KeyFile is the project's answer-link key in its store directory (0600).
const KeyFile = "serve.key"

// Question is what a button needs of a question.
type Question struct {
	ID      string
	Options []string
	// Expires is when the question expires (zero: never).
	Expires time.Time
}

// AnswerLinks makes and checks answer links.
type AnswerLinks struct {
	// Base is the dashboard's public URL (https://host:port, no path).
	Base string
	Key  []byte
	// TTL bounds a link's life when its question does not expire sooner
	// (24 h when 0).
	TTL time.Duration
}

// maxActions is ntfy's limit of buttons on a notification.
const maxActions = 3

// Actions are the buttons for questions: one per option of the first
// question with options when it is the only question and has at most
// three; otherwise up to two of them and a link to the questions page.
// A question without options is answered on the page.
func (a AnswerLinks) Actions(qs []Question, now time.Time) []abi.Action {
	var first *Question
	for i := range qs {
		if len(qs[i].Options) > 0 {
			first = &qs[i]
			break
		}
	}
	var out []abi.Action
	room := maxActions
	if first == nil || len(qs) > 1 || len(first.Options) > maxActions {
		room = maxActions - 1
	}
	if first != nil {
		exp := now.Add(a.ttl())
		if !first.Expires.IsZero() && first.Expires.Before(exp) {
			exp = first.Expires
		}
		for _, opt := range first.Options {
			if len(out) == room {
				break
			}
			out = append(out, abi.Action{Action: "http", Label: opt, URL: a.Link(first.ID, opt, exp), Method: "POST", Clear: true})
		}
	}
	if room < maxActions {
		out = append(out, abi.Action{Action: "view", Label: "Answer…", URL: strings.TrimSuffix(a.Base, "/") + "/inputs"})
	}
	return out
}

func (a AnswerLinks) ttl() time.Duration {
	if a.TTL > 0 {
		return a.TTL
	}
	return 24 * time.Hour
}

// Link is the URL that answers question id with answer until exp.
func (a AnswerLinks) Link(id, answer string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	v := base64.RawURLEncoding.EncodeToString([]byte(answer))
	q := url.Values{"v": {v}, "exp": {e}, "sig": {a.sign(id, answer, e)}}
	return strings.TrimSuffix(a.Base, "/") + "/a/" + url.PathEscape(id) + "?" + q.Encode()
}

func (a AnswerLinks) sign(id, answer, exp string) string {
	m := hmac.New(sha256.New, a.Key)
	fmt.Fprintf(m, "12fa answer\x00%s\x00%s\x00%s", id, answer, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadLink     = errors.New("the answer link is not one this server signed")
	ErrExpiredLink = errors.New("the answer link has expired")
)

// Verify checks the query of a link to question id and returns its
// answer.
func (a AnswerLinks) Verify(id string, q url.Values, now time.Time) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(q.Get("v"))
	if err != nil || len(a.Key) == 0 {
		return "", ErrBadLink
	}
	answer, e := string(raw), q.Get("exp")
	if !hmac.Equal([]byte(q.Get("sig")), []byte(a.sign(id, answer, e))) {
		return "", ErrBadLink
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return "", ErrBadLink
	}
	if !now.Before(time.Unix(exp, 0)) {
		return "", ErrExpiredLink
	}
	return answer, nil
}

// LoadKey reads the answer-link key in a store directory.
func LoadKey(storeDir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(storeDir, KeyFile))
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("%s: not a key", filepath.Join(storeDir, KeyFile))
	}
	return k, nil
}

// LoadOrCreateKey reads the key, making one (32 random bytes) when there
// is none.
func LoadOrCreateKey(storeDir string) ([]byte, error) {
	k, err := LoadKey(storeDir)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(storeDir, KeyFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadKey(storeDir) // another made it meanwhile
	}
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(hex.EncodeToString(k) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return k, err
}

// ServeFile records, in a store directory, the public URL `12fa serve
// --public-url` answers at; the runs of that project read it (with the
// key) to put answer buttons on their notifications.
const ServeFile = "serve.json"

type serveFile struct {
	PublicURL string `json:"public_url"`
}

// SaveAnswerLinks makes the project's runs link their questions to
// publicURL (http or https, a host, no query), creating the key.
func SaveAnswerLinks(storeDir, publicURL string) (AnswerLinks, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return AnswerLinks{}, fmt.Errorf("--public-url %q: want http(s)://host[:port][/path], the address phones reach this server at", publicURL)
	}
	key, err := LoadOrCreateKey(storeDir)
	if err != nil {
		return AnswerLinks{}, err
	}
	b, err := json.Marshal(serveFile{PublicURL: strings.TrimSuffix(publicURL, "/")})
	if err != nil {
		return AnswerLinks{}, err
	}
	if err := atomicfile.Write(filepath.Join(storeDir, ServeFile), append(b, '\n'), 0o644); err != nil {
		return AnswerLinks{}, err
	}
	return AnswerLinks{Base: strings.TrimSuffix(publicURL, "/"), Key: key}, nil
}

// LoadAnswerLinks reads what SaveAnswerLinks wrote; false when the
// project's dashboard has no public URL.
func LoadAnswerLinks(storeDir string) (AnswerLinks, bool) {
	b, err := os.ReadFile(filepath.Join(storeDir, ServeFile))
	if err != nil {
		return AnswerLinks{}, false
	}
	var f serveFile
	if json.Unmarshal(b, &f) != nil || f.PublicURL == "" {
		return AnswerLinks{}, false
	}
	key, err := LoadKey(storeDir)
	if err != nil {
		return AnswerLinks{}, false
	}
	return AnswerLinks{Base: f.PublicURL, Key: key}, true
}
