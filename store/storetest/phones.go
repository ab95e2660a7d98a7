package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var phoneTests = []test{
	{"RoundTrip", testPhoneRoundTrip},
	{"Replace", testPhoneReplace},
	{"UnknownUser", testPhoneUnknownUser},
	{"InputsCopied", testPhoneCopied},
	{"FindByPhone", testFindUsersByPhone},
	{"FindByPhoneLimit", testFindUsersByPhoneLimit},
}

func newPhone(n string, now time.Time) store.Phone {
	return store.Phone{
		Sealed:    []byte("sealed-phone:" + n),
		Lookup:    []byte("phone-lookup:" + n),
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

func findByPhone(t *testing.T, s store.Store, lookups ...string) []string {
	t.Helper()
	ls := make([][]byte, len(lookups))
	for i, l := range lookups {
		ls[i] = []byte("phone-lookup:" + l)
	}
	us, err := s.FindUsersByPhone(t.Context(), ls)
	if err != nil {
		t.Fatalf("FindUsersByPhone(%v): %v", lookups, err)
	}
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

// testFindUsersByPhone: users are found by any of a number's lookups,
// oldest first, with their phone; a replaced number is no longer found;
// a number recorded without a lookup is never found.
func testFindUsersByPhone(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o2", "", nil, "u2", at(time.Minute)))
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	mustUpsert(t, s, upsert("wxA", "o3", "", nil, "u3", base))
	mustUpsert(t, s, upsert("wxA", "o4", "", nil, "u4", base))
	mustSetPhone(t, s, "u1", newPhone("1", base))
	mustSetPhone(t, s, "u2", newPhone("1", base))
	mustSetPhone(t, s, "u3", newPhone("3", base))
	bare := newPhone("1", base)
	bare.Lookup = nil
	mustSetPhone(t, s, "u4", bare)

	if got := findByPhone(t, s, "1"); !slices.Equal(got, []string{"u1", "u2"}) {
		t.Fatalf("FindUsersByPhone(1) = %v, want [u1 u2]", got)
	}
	if got := findByPhone(t, s, "unknown", "3"); !slices.Equal(got, []string{"u3"}) {
		t.Fatalf("FindUsersByPhone(unknown, 3) = %v, want [u3]", got)
	}
	if got := findByPhone(t, s, "unknown"); len(got) != 0 {
		t.Fatalf("FindUsersByPhone(unknown) = %v, want none", got)
	}
	if got := findByPhone(t, s); len(got) != 0 {
		t.Fatalf("FindUsersByPhone() = %v, want none", got)
	}
	us, err := s.FindUsersByPhone(t.Context(), [][]byte{[]byte("phone-lookup:3")})
	if err != nil || len(us) != 1 {
		t.Fatalf("FindUsersByPhone(3) = %d users, %v", len(us), err)
	}
	wantEqual(t, "user found by phone", mustUser(t, s, "u3"), us[0])

	mustSetPhone(t, s, "u2", newPhone("3", at(time.Hour)))
	if got := findByPhone(t, s, "1"); !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("FindUsersByPhone(1) after u2 changed numbers = %v, want [u1]", got)
	}
	if got := findByPhone(t, s, "3"); !slices.Equal(got, []string{"u3", "u2"}) {
		t.Fatalf("FindUsersByPhone(3) after u2 changed numbers = %v, want [u3 u2]", got)
	}
}

func testFindUsersByPhoneLimit(t *testing.T, s store.Store) {
	for i := range store.MaxPhoneHolders + 1 {
		id := fmt.Sprintf("u%02d", i)
		mustUpsert(t, s, upsert("wxA", "o"+id, "", nil, id, base))
		mustSetPhone(t, s, id, newPhone("1", base))
	}
	got := findByPhone(t, s, "1")
	if len(got) != store.MaxPhoneHolders || got[0] != "u00" {
		t.Fatalf("FindUsersByPhone of %d holders = %v; want the first %d", store.MaxPhoneHolders+1, got, store.MaxPhoneHolders)
	}
}
