package notify_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/12fa/12fa/notify"
)

func query(t *testing.T, link string) (string, url.Values) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.PathUnescape(strings.TrimPrefix(u.Path, "/a/"))
	return id, u.Query()
}

// TestAnswerLinks: a question's buttons are at most ntfy's three: an
// answer per option of a lone question, else two and a link to the
// questions page; each link verifies for its answer only, until it
// expires, and not with another key.
func TestAnswerLinks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := notify.AnswerLinks{Base: "https://12fa.example:8812/", Key: []byte("0123456789abcdef0123456789abcdef")}
	one := a.Actions([]notify.Question{{ID: "q-1", Options: []string{"yes", "no"}}}, now)
	if len(one) != 2 || one[0].Action != "http" || one[0].Label != "yes" || one[0].Method != "POST" || !one[0].Clear ||
		!strings.HasPrefix(one[0].URL, "https://12fa.example:8812/a/q-1?") {
		t.Fatalf("one question, two options: %+v", one)
	}
	two := a.Actions([]notify.Question{{ID: "q-1", Options: []string{"yes", "no"}}, {ID: "q-2"}}, now)
	if len(two) != 3 || two[2].Action != "view" || two[2].URL != "https://12fa.example:8812/inputs" {
		t.Fatalf("two questions: %+v", two)
	}
	many := a.Actions([]notify.Question{{ID: "q-1", Options: []string{"a", "b", "c", "d"}}}, now)
	if len(many) != 3 || many[0].Label != "a" || many[1].Label != "b" || many[2].Action != "view" {
		t.Fatalf("four options: %+v", many)
	}
	if free := a.Actions([]notify.Question{{ID: "q-2"}}, now); len(free) != 1 || free[0].Action != "view" {
		t.Fatalf("a question without options: %+v", free)
	}

	id, q := query(t, one[0].URL)
	if got, err := a.Verify(id, q, now); err != nil || got != "yes" {
		t.Fatalf("the yes link: %q, %v", got, err)
	}
	if _, err := a.Verify("q-2", q, now); !errors.Is(err, notify.ErrBadLink) {
		t.Errorf("the link for another question: %v", err)
	}
	_, no := query(t, one[1].URL)
	forged := url.Values{"v": no["v"], "exp": q["exp"], "sig": q["sig"]}
	if _, err := a.Verify(id, forged, now); !errors.Is(err, notify.ErrBadLink) {
		t.Errorf("yes's signature on no: %v", err)
	}
	later := url.Values{"v": q["v"], "exp": {"9999999999"}, "sig": q["sig"]}
	if _, err := a.Verify(id, later, now); !errors.Is(err, notify.ErrBadLink) {
		t.Errorf("a link whose expiry was moved: %v", err)
	}
	if _, err := a.Verify(id, q, now.Add(25*time.Hour)); !errors.Is(err, notify.ErrExpiredLink) {
		t.Errorf("after a day: %v", err)
	}
	other := notify.AnswerLinks{Base: a.Base, Key: []byte("fedcba9876543210fedcba9876543210")}
	if _, err := other.Verify(id, q, now); !errors.Is(err, notify.ErrBadLink) {
		t.Errorf("another key: %v", err)
	}
	// A question that expires sooner: so does its link.
	soon := a.Actions([]notify.Question{{ID: "q-3", Options: []string{"ok"}, Expires: now.Add(time.Minute)}}, now)
	id, q = query(t, soon[0].URL)
	if _, err := a.Verify(id, q, now.Add(2*time.Minute)); !errors.Is(err, notify.ErrExpiredLink) {
		t.Errorf("past its question's expiry: %v", err)
	}
}

// TestAnswerLinks_Saved: the dashboard's public URL and key, saved in a
// store directory, are what the project's runs load; the key file is
// private and kept across saves.
func TestAnswerLinks_Saved(t *testing.T) {
	dir := t.TempDir()
	if _, ok := notify.LoadAnswerLinks(dir); ok {
		t.Fatal("links loaded before any was saved")
	}
	if _, err := notify.SaveAnswerLinks(dir, "ftp://x"); err == nil {
		t.Error("an ftp URL was taken")
	}
	saved, err := notify.SaveAnswerLinks(dir, "https://phone.example/12fa/")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, notify.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	loaded, ok := notify.LoadAnswerLinks(dir)
	if !ok || loaded.Base != "https://phone.example/12fa" || string(loaded.Key) != string(saved.Key) || len(loaded.Key) != 32 {
		t.Fatalf("loaded %+v, saved %+v", loaded, saved)
	}
	again, err := notify.SaveAnswerLinks(dir, "https://other.example")
	if err != nil || string(again.Key) != string(saved.Key) {
		t.Fatalf("a second save made a new key: %v", err)
	}
}
