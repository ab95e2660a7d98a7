package token_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/token"
)

func TestMintAndParse(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		raw, hash, err := token.New(rand.Reader, token.Access)
		if err != nil {
			t.Fatal(err)
		}
		if seen[raw] {
			t.Fatal("duplicate token")
		}
		seen[raw] = true
		body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(raw, token.Access))
		if err != nil || len(body) != 32 {
			t.Fatalf("%q carries %d random bytes, want 32 (256 bits)", raw, len(body))
		}
		got, ok := token.Parse(raw, token.Access)
		if !ok || !bytes.Equal(got, hash) {
			t.Fatalf("parse %q", raw)
		}
		if _, ok := token.Parse(raw, token.Refresh); ok {
			t.Fatal("access token accepted as refresh token")
		}
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	valid, _, _ := token.New(rand.Reader, token.Refresh)
	for _, bad := range []string{"", "mpr_", "mpr_short", valid + "x", valid[:len(valid)-1] + "=", "mpa_" + valid[4:],
		strings.Replace(valid, valid[10:11], "!", 1), strings.Repeat("a", 10000)} {
		if _, ok := token.Parse(bad, token.Refresh); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}
