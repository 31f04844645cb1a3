package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/pgstore"
)

// blobMap is a blobSource in memory.
type blobMap map[string][]byte

func (m blobMap) Blob(sha string) ([]byte, error) {
	b, ok := m[sha]
	if !ok {
		return nil, errors.New("blob " + sha + " is missing")
	}
	return b, nil
}

func put(m blobMap, blobs []pgstore.Blob) string {
	for _, b := range blobs {
		m[b.SHA256()] = b.Body
	}
	return blobs[len(blobs)-1].SHA256()
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBundle_LaysOutPluginsOutsideTheManifestDir: a manifest whose plugins
// are beside it and one directory up is laid out on a worker with every
// plugin resolving inside the bundle's directory, to the same bytes.
func TestBundle_LaysOutPluginsOutsideTheManifestDir(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "shared", "up.wasm"), "up bytes")
	write(t, filepath.Join(src, "wf", "here.wasm"), "here bytes")
	write(t, filepath.Join(src, "wf", "plugin-manifest.toml"), `[workflow]
name = "w"

[[step]]
id = "a"
plugin = "here.wasm"

[[step]]
id = "b"
plugin = "../shared/up.wasm"

[[step]]
id = "c"
plugin = "./here.wasm"
`)
	m, err := manifest.Load(filepath.Join(src, "wf", "plugin-manifest.toml"))
	if err != nil {
		t.Fatal(err)
	}
	b, blobs, err := NewBundle(m, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 4 || len(b.Files) != 3 {
		t.Fatalf("%d blobs, files %v: want the manifest, two plugins (one named twice) and the bundle", len(blobs), b.Files)
	}
	store := blobMap{}
	sha := put(store, blobs)
	dir := t.TempDir()
	for range 2 { // the second finds it laid out
		got, err := materialize(context.Background(), dir, sha, store)
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(dir, sha)
		for i, want := range []string{"here bytes", "up bytes", "here bytes"} {
			p := got.Steps[i].PluginPath
			if rel, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("step %s's plugin %s is outside the bundle %s", got.Steps[i].ID, p, root)
			}
			if body, err := os.ReadFile(p); err != nil || string(body) != want {
				t.Fatalf("step %s's plugin: %q, %v; want %q", got.Steps[i].ID, body, err, want)
			}
		}
		if got.Path == m.Path || got.Workflow.Name != "w" {
			t.Fatalf("the laid-out manifest: %s (%s)", got.Path, got.Workflow.Name)
		}
	}
}

// TestBundle_RefusesWhatAnotherMachineLacks: an absolute plugin path, and
// host directories without --shared-paths; with it, the grants stay
// relative to where the manifest was submitted from.
func TestBundle_RefusesWhatAnotherMachineLacks(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "p.wasm"), "p")
	write(t, filepath.Join(src, "abs.toml"), "[workflow]\nname = \"w\"\n\n[[step]]\nid = \"a\"\nplugin = \""+filepath.Join(src, "p.wasm")+"\"\n")
	if err := os.MkdirAll(filepath.Join(src, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "paths.toml"), "[workflow]\nname = \"w\"\n\n[[step]]\nid = \"a\"\nplugin = \"p.wasm\"\nallow = { paths = { \"data\" = \"/data\" } }\n")
	for _, name := range []string{"abs.toml", "paths.toml"} {
		m, err := manifest.Load(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := NewBundle(m, false); !errors.Is(err, ErrNotPortable) || !strings.Contains(err.Error(), `step "a"`) {
			t.Errorf("%s: %v, want ErrNotPortable naming the step", name, err)
		}
	}
	m, err := manifest.Load(filepath.Join(src, "paths.toml"))
	if err != nil {
		t.Fatal(err)
	}
	_, blobs, err := NewBundle(m, true)
	if err != nil {
		t.Fatal(err)
	}
	store := blobMap{}
	got, err := materialize(context.Background(), t.TempDir(), put(store, blobs), store)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != src {
		t.Errorf("with shared paths the grants are relative to %s, want %s", got.Dir, src)
	}
}

// TestBundle_RefusesBlobsThatDoNotMatch: a plugin whose stored bytes are
// not the ones its name says is refused, and nothing is laid out.
func TestBundle_RefusesBlobsThatDoNotMatch(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "p.wasm"), "p")
	write(t, filepath.Join(src, "m.toml"), "[workflow]\nname = \"w\"\n\n[[step]]\nid = \"a\"\nplugin = \"p.wasm\"\n")
	m, err := manifest.Load(filepath.Join(src, "m.toml"))
	if err != nil {
		t.Fatal(err)
	}
	b, blobs, err := NewBundle(m, false)
	if err != nil {
		t.Fatal(err)
	}
	store := blobMap{}
	sha := put(store, blobs)
	store[b.Files["p.wasm"]] = []byte("not p")
	dir := t.TempDir()
	if _, err := materialize(context.Background(), dir, sha, store); err == nil || !strings.Contains(err.Error(), "does not hash") {
		t.Fatalf("materialize with a tampered plugin: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, sha)); !os.IsNotExist(err) {
		t.Errorf("a bundle was laid out: %v", err)
	}
}

func TestValidRel(t *testing.T) {
	for rel, want := range map[string]bool{
		"a.wasm": true, "x/a.wasm": true, "../a.wasm": true, "../../x/a.wasm": true,
		"": false, "/a.wasm": false, "x/../a.wasm": false, "..": false, "./a.wasm": false, "x\\a.wasm": false, "../x/..": false,
	} {
		if got := validRel(rel); got != want {
			t.Errorf("validRel(%q) = %v, want %v", rel, got, want)
		}
	}
}
