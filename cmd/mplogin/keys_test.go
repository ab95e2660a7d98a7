package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/signing"
)

// publishedKids loads the key set the configuration's store holds.
func publishedKids(t *testing.T, path string) []string {
	t.Helper()
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenStore(t.Context(), cfg.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := keyring.New(nil, cfg.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := signing.New(signing.Config{Store: st, Keys: kr, MaxTokenTTL: cfg.MaxJWTTTL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range m.Published(time.Now()) {
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestKeysRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mplogin.yaml")
	src := "store: sqlite:" + filepath.Join(dir, "mplogin.db") + "\nmaster_key: BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n" +
		"log: {level: debug}\napps:\n  - {name: w, platform: wechat, appid: wx0123456789abcdef, secret: s}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rotate := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"keys", "rotate", "--config", path}, args...), &stdout, &stderr, nil)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	// Every long base64url word printed or logged is a kid the set held:
	// no private key (a P-256 scalar is as long as a kid) is ever shown.
	long := regexp.MustCompile(`[A-Za-z0-9_\-+/=]{40,}`)
	onlyKids := func(text string, kids []string) {
		t.Helper()
		for _, w := range long.FindAllString(text, -1) {
			if !slices.Contains(kids, w) {
				t.Fatalf("printed %q, which is no kid of the set", w)
			}
		}
	}

	out, logs := rotate()
	first := publishedKids(t, path)
	if !strings.Contains(out, "current key: "+first[0]) || !strings.Contains(out, "removed from the JWK set: none") {
		t.Fatalf("first rotation printed:\n%s\nset %v", out, first)
	}
	onlyKids(out+logs, first)

	out, logs = rotate("--revoke-current")
	second := publishedKids(t, path)
	current := first[0]
	if !strings.Contains(out, "removed from the JWK set: "+current) || slices.Contains(second, current) {
		t.Fatalf("--revoke-current printed:\n%s\nset %v; want %s gone", out, second, current)
	}
	if !strings.Contains(out, "current key: "+first[1]) {
		t.Fatalf("the next key %s does not sign after the rotation:\n%s", first[1], out)
	}
	onlyKids(out+logs, append(first, second...))
}

func TestKeysCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys"}, 2, "keys takes the subcommand rotate"},
		{[]string{"keys", "list"}, 2, "keys takes the subcommand rotate"},
		{[]string{"keys", "rotate"}, 1, "--config is required"},
		{[]string{"keys", "rotate", "--config", filepath.Join(t.TempDir(), "none.yaml")}, 1, "none.yaml"},
		{[]string{"keys", "rotate", "--nope"}, 1, "flag provided but not defined"},
	} {
		var stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, tc.args, io.Discard, &stderr, func(string) (string, bool) { return "", false })
		cancel()
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
