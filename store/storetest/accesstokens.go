package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var accessTokenTests = []test{
	{"RoundTrip", testAccessTokenRoundTrip},
	{"NotFound", testAccessTokenNotFound},
	{"Replace", testAccessTokenReplace},
	{"CompareAndDelete", testAccessTokenCompareAndDelete},
	{"Times", testAccessTokenTimes},
	{"InputsCopied", testAccessTokenCopied},
	{"Invalid", testAccessTokenInvalid},
}

// newAccessToken returns a token fetched at base that lives 2 h and is due
// for refresh at 80% of that.
func newAccessToken(key, value string) store.AccessToken {
	return store.AccessToken{
		Key:       key,
		Sealed:    []byte("sealed-token:" + value),
		ExpiresAt: at(2 * hour),
		RefreshAt: at(96 * time.Minute),
	}
}

func mustPutAccessToken(t *testing.T, s store.Store, tok store.AccessToken) {
	t.Helper()
	if err := s.PutAccessToken(t.Context(), tok); err != nil {
		t.Fatalf("PutAccessToken(%s): %v", tok.Key, err)
	}
}

func mustGetAccessToken(t *testing.T, s store.Store, key string) store.AccessToken {
	t.Helper()
	tok, err := s.GetAccessToken(t.Context(), key)
	if err != nil {
		t.Fatalf("GetAccessToken(%s): %v", key, err)
	}
	return tok
}

func testAccessTokenRoundTrip(t *testing.T, s store.Store) {
	wx := newAccessToken("wechat:wxA", "one")
	bd := newAccessToken("baidu:bdA", "two")
	bd.ExpiresAt, bd.RefreshAt = at(30*day), at(24*day)
	mustPutAccessToken(t, s, wx)
	mustPutAccessToken(t, s, bd)
	wantEqual(t, "wechat token", wx, mustGetAccessToken(t, s, wx.Key))
	wantEqual(t, "baidu token", bd, mustGetAccessToken(t, s, bd.Key))

	// Every byte value survives, NUL and non-UTF-8 included.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	raw := newAccessToken("raw", "")
	raw.Sealed = all
	mustPutAccessToken(t, s, raw)
	wantEqual(t, "token with every byte", raw, mustGetAccessToken(t, s, "raw"))
}

func testAccessTokenNotFound(t *testing.T, s store.Store) {
	_, err := s.GetAccessToken(t.Context(), "wechat:none")
	wantErr(t, "GetAccessToken(unknown)", err, store.ErrNotFound)
	// Keys are compared whole, not as prefixes.
	mustPutAccessToken(t, s, newAccessToken("wechat:wxA", "one"))
	for _, key := range []string{"wechat:wx", "wechat:wxA ", "WECHAT:WXA", ""} {
		_, err := s.GetAccessToken(t.Context(), key)
		wantErr(t, "GetAccessToken("+key+")", err, store.ErrNotFound)
	}
	// Expired tokens are still returned: the caller judges times.
	old := newAccessToken("old", "x")
	old.ExpiresAt, old.RefreshAt = at(-hour), at(-2*hour)
	mustPutAccessToken(t, s, old)
	wantEqual(t, "expired token", old, mustGetAccessToken(t, s, "old"))
}

func testAccessTokenReplace(t *testing.T, s store.Store) {
	first := newAccessToken("wechat:wxA", "one")
	mustPutAccessToken(t, s, first)
	second := newAccessToken("wechat:wxA", "two")
	second.ExpiresAt, second.RefreshAt = at(4*hour), at(3*hour)
	mustPutAccessToken(t, s, second)
	wantEqual(t, "replaced token", second, mustGetAccessToken(t, s, "wechat:wxA"))

	// Replacing may also shorten the times.
	third := newAccessToken("wechat:wxA", "three")
	third.ExpiresAt, third.RefreshAt = at(time.Minute), at(time.Second)
	mustPutAccessToken(t, s, third)
	wantEqual(t, "shortened token", third, mustGetAccessToken(t, s, "wechat:wxA"))
}

// testAccessTokenCompareAndDelete: a late invalidation of an old token must
// not drop the newer one another instance stored meanwhile.
func testAccessTokenCompareAndDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := newAccessToken("wechat:wxA", "old")
	newer := newAccessToken("wechat:wxA", "newer")
	other := newAccessToken("wechat:wxB", "old") // same sealed bytes, other key
	mustPutAccessToken(t, s, old)
	mustPutAccessToken(t, s, other)
	mustPutAccessToken(t, s, newer)

	if err := s.DeleteAccessToken(ctx, "wechat:wxA", old.Sealed); err != nil {
		t.Fatalf("DeleteAccessToken(old value): %v", err)
	}
	wantEqual(t, "newer token after deleting the old value", newer, mustGetAccessToken(t, s, "wechat:wxA"))
	// Neither a prefix nor an empty value matches.
	for _, v := range [][]byte{newer.Sealed[:len(newer.Sealed)-1], nil, {}} {
		if err := s.DeleteAccessToken(ctx, "wechat:wxA", v); err != nil {
			t.Fatalf("DeleteAccessToken(%q): %v", v, err)
		}
		wantEqual(t, "token after a non-matching delete", newer, mustGetAccessToken(t, s, "wechat:wxA"))
	}

	if err := s.DeleteAccessToken(ctx, "wechat:wxA", newer.Sealed); err != nil {
		t.Fatalf("DeleteAccessToken(current value): %v", err)
	}
	_, err := s.GetAccessToken(ctx, "wechat:wxA")
	wantErr(t, "GetAccessToken after delete", err, store.ErrNotFound)
	// The other key is untouched, and deleting what is gone is no error.
	wantEqual(t, "other key", other, mustGetAccessToken(t, s, "wechat:wxB"))
	if err := s.DeleteAccessToken(ctx, "wechat:wxA", newer.Sealed); err != nil {
		t.Fatalf("DeleteAccessToken(deleted): %v", err)
	}
	if err := s.DeleteAccessToken(ctx, "wechat:none", newer.Sealed); err != nil {
		t.Fatalf("DeleteAccessToken(unknown key): %v", err)
	}
	// A token put again after a delete is back.
	mustPutAccessToken(t, s, old)
	wantEqual(t, "token put again", old, mustGetAccessToken(t, s, "wechat:wxA"))
}

func testAccessTokenTimes(t *testing.T, s store.Store) {
	beijing := time.FixedZone("CST", 8*60*60)
	tok := store.AccessToken{
		Key:       "wechat:wxA",
		Sealed:    sealed("t"),
		ExpiresAt: base.Add(2*hour + time.Microsecond).In(beijing),
		RefreshAt: time.Date(1969, time.July, 20, 20, 17, 40, 1000, time.UTC),
	}
	mustPutAccessToken(t, s, tok)
	got := mustGetAccessToken(t, s, "wechat:wxA")
	wantEqual(t, "token times", tok, got)
	if got.ExpiresAt.Equal(tok.ExpiresAt.Add(-time.Microsecond)) {
		t.Fatal("a microsecond was lost")
	}

	// Zero times stay zero.
	zero := store.AccessToken{Key: "zero", Sealed: sealed("z")}
	mustPutAccessToken(t, s, zero)
	wantEqual(t, "token without times", zero, mustGetAccessToken(t, s, "zero"))
}

func testAccessTokenCopied(t *testing.T, s store.Store) {
	tok := newAccessToken("wechat:wxA", "one")
	mustPutAccessToken(t, s, tok)
	tok.Sealed[0] ^= 0xff
	got := mustGetAccessToken(t, s, "wechat:wxA")
	if !bytes.Equal(got.Sealed, newAccessToken("", "one").Sealed) {
		t.Fatalf("Sealed = %q after the caller changed its buffer", got.Sealed)
	}
	got.Sealed[0] ^= 0xff
	wantEqual(t, "token after the caller changed a result", newAccessToken("wechat:wxA", "one"), mustGetAccessToken(t, s, "wechat:wxA"))
}

func testAccessTokenInvalid(t *testing.T, s store.Store) {
	for name, tok := range map[string]store.AccessToken{
		"empty key":    {Sealed: sealed("x"), ExpiresAt: at(hour)},
		"empty sealed": {Key: "wechat:wxA", ExpiresAt: at(hour)},
	} {
		if err := s.PutAccessToken(t.Context(), tok); err == nil {
			t.Errorf("PutAccessToken with %s succeeded", name)
		}
	}
	_, err := s.GetAccessToken(t.Context(), "wechat:wxA")
	wantErr(t, "GetAccessToken after refused puts", err, store.ErrNotFound)
}
