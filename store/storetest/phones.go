package storetest

import (
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var phoneTests = []test{
	{"RoundTrip", testPhoneRoundTrip},
	{"Replace", testPhoneReplace},
	{"UnknownUser", testPhoneUnknownUser},
	{"InputsCopied", testPhoneCopied},
}

func newPhone(n string, now time.Time) store.Phone {
	return store.Phone{
		Sealed:    []byte("sealed-phone:" + n),
		Source:    store.PhoneFromPlatform,
		App:       "main",
		UpdatedAt: now,
	}
}

func mustSetPhone(t *testing.T, s store.Store, userID string, p store.Phone) {
	t.Helper()
	if err := s.SetPhone(t.Context(), userID, p); err != nil {
		t.Fatalf("SetPhone(%s): %v", userID, err)
	}
}

func mustUser(t *testing.T, s store.Store, id string) store.User {
	t.Helper()
	u, err := s.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", id, err)
	}
	return u
}

func testPhoneRoundTrip(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	if got := mustUser(t, s, "u1").Phone; len(got.Sealed) != 0 || got.Source != "" {
		t.Fatalf("a new user has a phone: %+v", got)
	}
	p := newPhone("1", at(time.Hour))
	mustSetPhone(t, s, "u1", p)
	wantEqual(t, "user", store.User{ID: "u1", CreatedAt: base, Phone: p}, mustUser(t, s, "u1"))
}

func testPhoneReplace(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	mustSetPhone(t, s, "u1", newPhone("1", at(time.Hour)))
	p := newPhone("2", at(2*time.Hour))
	p.Source, p.App = store.PhoneFromUserData, "other"
	mustSetPhone(t, s, "u1", p)
	wantEqual(t, "phone after replace", p, mustUser(t, s, "u1").Phone)
}

func testPhoneUnknownUser(t *testing.T, s store.Store) {
	err := s.SetPhone(t.Context(), "nobody", newPhone("1", base))
	wantErr(t, "SetPhone of an unknown user", err, store.ErrNotFound)
	_, err = s.GetUser(t.Context(), "nobody")
	wantErr(t, "GetUser after SetPhone of an unknown user", err, store.ErrNotFound)
}

func testPhoneCopied(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	p := newPhone("1", base)
	mustSetPhone(t, s, "u1", p)
	p.Sealed[0] ^= 0xff
	got := mustUser(t, s, "u1")
	wantEqual(t, "phone after the caller changed its buffer", newPhone("1", base), got.Phone)
	got.Phone.Sealed[0] ^= 0xff
	wantEqual(t, "phone after a reader changed its copy", newPhone("1", base), mustUser(t, s, "u1").Phone)
}
