package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

const grace = 5 * time.Minute

// rounds is how many times a concurrency test races its callers.
const rounds = 10

// upsert returns an IdentityUpsert of the WeChat identity (app, openID) at now.
func upsert(app, openID, unionID string, key []byte, newUser string, now time.Time) store.IdentityUpsert {
	return store.IdentityUpsert{
		Family:           "wechat",
		AppID:            app,
		OpenID:           openID,
		UnionID:          unionID,
		SealedSessionKey: key,
		NewUserID:        newUser,
		Now:              now,
		KeyGrace:         grace,
	}
}

var identityTests = []test{
	{"Create", testUpsertCreate},
	{"Existing", testUpsertExisting},
	{"SessionKeyRotation", testUpsertKeyRotation},
	{"EmptySessionKey", testUpsertEmptyKey},
	{"UnionIDRecorded", testUpsertUnionRecorded},
	{"UnionIDJoinsUser", testUpsertUnionJoins},
	{"UnionIDOtherPlatform", testUpsertUnionOtherPlatform},
	{"UnionIDOtherValue", testUpsertUnionOtherValue},
	{"Concurrent", testUpsertConcurrent},
}

var getTests = []test{
	{"IdentityNotFound", testGetIdentityNotFound},
	{"UserNotFound", testGetUserNotFound},
}

func testUpsertCreate(t *testing.T, s store.Store) {
	in := upsert("wxA", "o1", "un1", sealed("k1"), "u1", base)
	got, created := mustUpsert(t, s, in)
	if !created {
		t.Fatal("created = false for a new identity")
	}
	want := store.Identity{
		Family:     "wechat",
		AppID:      "wxA",
		OpenID:     "o1",
		UnionID:    "un1",
		UserID:     "u1",
		SessionKey: sealed("k1"),
		CreatedAt:  base,
		UpdatedAt:  base,
	}
	wantEqual(t, "returned identity", want, got)
	wantEqual(t, "stored identity", want, mustIdentity(t, s, "wechat", "wxA", "o1"))

	u, err := s.GetUser(t.Context(), "u1")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	wantEqual(t, "user", store.User{ID: "u1", CreatedAt: base}, u)
}

func testUpsertExisting(t *testing.T, s store.Store) {
	first, _ := mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))

	got, created := mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u2", at(hour)))
	if created {
		t.Fatal("created = true for a known identity")
	}
	want := first
	want.UpdatedAt = at(hour)
	wantEqual(t, "returned identity", want, got)
	wantEqual(t, "stored identity", want, mustIdentity(t, s, "wechat", "wxA", "o1"))

	// NewUserID is used only when a user is created.
	_, err := s.GetUser(t.Context(), "u2")
	wantErr(t, "GetUser(unused NewUserID)", err, store.ErrNotFound)
}

func testUpsertKeyRotation(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))

	// A new key: the current one moves to Prev with a grace period.
	got, _ := mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k2"), "", at(hour)))
	want := store.Identity{
		Family: "wechat", AppID: "wxA", OpenID: "o1", UserID: "u1",
		SessionKey:       sealed("k2"),
		PrevSessionKey:   sealed("k1"),
		PrevKeyExpiresAt: at(hour + grace),
		CreatedAt:        base,
		UpdatedAt:        at(hour),
	}
	wantEqual(t, "after new key", want, got)
	wantEqual(t, "stored after new key", want, mustIdentity(t, s, "wechat", "wxA", "o1"))

	// nil keeps the current key and leaves the previous one alone.
	got, _ = mustUpsert(t, s, upsert("wxA", "o1", "", nil, "", at(2*hour)))
	want.UpdatedAt = at(2 * hour)
	wantEqual(t, "after nil key", want, got)

	// The same key again is no rotation: Prev and its expiry stay.
	got, _ = mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k2"), "", at(3*hour)))
	want.UpdatedAt = at(3 * hour)
	wantEqual(t, "after same key", want, got)

	// Another new key pushes k2 out of current and k1 out entirely.
	got, _ = mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k3"), "", at(4*hour)))
	want.SessionKey = sealed("k3")
	want.PrevSessionKey = sealed("k2")
	want.PrevKeyExpiresAt = at(4*hour + grace)
	want.UpdatedAt = at(4 * hour)
	wantEqual(t, "after third key", want, got)
	wantEqual(t, "stored after third key", want, mustIdentity(t, s, "wechat", "wxA", "o1"))
}

// testUpsertEmptyKey checks that an empty key means "none", like nil.
func testUpsertEmptyKey(t *testing.T, s store.Store) {
	got, _ := mustUpsert(t, s, upsert("wxA", "o1", "", []byte{}, "u1", base))
	if len(got.SessionKey) != 0 || len(got.PrevSessionKey) != 0 || !got.PrevKeyExpiresAt.IsZero() {
		t.Fatalf("new identity without key: SessionKey %x, PrevSessionKey %x, PrevKeyExpiresAt %v",
			got.SessionKey, got.PrevSessionKey, got.PrevKeyExpiresAt)
	}

	// The first real key has no predecessor to keep.
	got, _ = mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "", at(hour)))
	want := store.Identity{
		Family: "wechat", AppID: "wxA", OpenID: "o1", UserID: "u1",
		SessionKey: sealed("k1"),
		CreatedAt:  base,
		UpdatedAt:  at(hour),
	}
	wantEqual(t, "after first key", want, got)

	// An empty key keeps the current one, like nil.
	got, _ = mustUpsert(t, s, upsert("wxA", "o1", "", []byte{}, "", at(2*hour)))
	want.UpdatedAt = at(2 * hour)
	wantEqual(t, "after empty key", want, got)
	wantEqual(t, "stored after empty key", want, mustIdentity(t, s, "wechat", "wxA", "o1"))
}

func testUpsertUnionRecorded(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))

	got, _ := mustUpsert(t, s, upsert("wxA", "o1", "un1", nil, "", at(hour)))
	if got.UnionID != "un1" {
		t.Fatalf("UnionID = %q after it became known, want %q", got.UnionID, "un1")
	}
	// Recorded, not overwritten by another value, not cleared by "".
	for i, u := range []string{"un2", ""} {
		got, _ = mustUpsert(t, s, upsert("wxA", "o1", u, nil, "", at(time.Duration(i+2)*hour)))
		if got.UnionID != "un1" {
			t.Fatalf("UnionID = %q after upsert with %q, want %q", got.UnionID, u, "un1")
		}
	}
	if id := mustIdentity(t, s, "wechat", "wxA", "o1"); id.UnionID != "un1" || id.UserID != "u1" {
		t.Fatalf("stored UnionID %q UserID %q, want un1 u1", id.UnionID, id.UserID)
	}
}

func testUpsertUnionJoins(t *testing.T, s store.Store) {
	a, _ := mustUpsert(t, s, upsert("wxA", "o1", "un1", sealed("ka"), "u1", base))

	// Same person in another mini program of the same platform.
	b, created := mustUpsert(t, s, upsert("wxB", "o2", "un1", sealed("kb"), "u2", at(hour)))
	if created {
		t.Fatal("created = true for a new identity with a known unionid")
	}
	want := store.Identity{
		Family: "wechat", AppID: "wxB", OpenID: "o2", UnionID: "un1", UserID: a.UserID,
		SessionKey: sealed("kb"),
		CreatedAt:  at(hour),
		UpdatedAt:  at(hour),
	}
	wantEqual(t, "joined identity", want, b)
	wantEqual(t, "stored joined identity", want, mustIdentity(t, s, "wechat", "wxB", "o2"))
	_, err := s.GetUser(t.Context(), "u2")
	wantErr(t, "GetUser(unused NewUserID)", err, store.ErrNotFound)

	// The first identity is untouched.
	wantEqual(t, "first identity", a, mustIdentity(t, s, "wechat", "wxA", "o1"))
}

func testUpsertUnionOtherPlatform(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "un1", nil, "u1", base))

	in := upsert("bdA", "o1", "un1", nil, "u2", at(hour))
	in.Family = "baidu"
	got, created := mustUpsert(t, s, in)
	if !created || got.UserID != "u2" {
		t.Fatalf("same unionid on another platform: created %v, UserID %q; want true, u2", created, got.UserID)
	}
}

func testUpsertUnionOtherValue(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "un1", nil, "u1", base))
	got, created := mustUpsert(t, s, upsert("wxB", "o2", "un2", nil, "u2", at(hour)))
	if !created || got.UserID != "u2" {
		t.Fatalf("other unionid: created %v, UserID %q; want true, u2", created, got.UserID)
	}
	// No unionid at all never joins anyone.
	got, created = mustUpsert(t, s, upsert("wxB", "o3", "", nil, "u3", at(hour)))
	if !created || got.UserID != "u3" {
		t.Fatalf("no unionid: created %v, UserID %q; want true, u3", created, got.UserID)
	}
}

// testUpsertConcurrent races callers that each bring their own NewUserID for
// the same new identity: exactly one user must come out of it. A race shows
// only when the callers overlap, so it runs several rounds.
func testUpsertConcurrent(t *testing.T, s store.Store) {
	for round := range rounds {
		upsertRace(t, s, fmt.Sprint("o", round), fmt.Sprintf("r%d-u", round))
	}
}

func upsertRace(t *testing.T, s store.Store, openID, userPrefix string) {
	t.Helper()
	const n = 20
	type result struct {
		id      store.Identity
		created bool
		err     error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			in := upsert("wxA", openID, "", sealed(fmt.Sprint("k", i)), fmt.Sprint(userPrefix, i), base)
			id, created, err := s.UpsertIdentity(t.Context(), in)
			results[i] = result{id, created, err}
		})
	}
	close(start)
	wg.Wait()

	creators, userID := 0, ""
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if r.created {
			creators++
			userID = r.id.UserID
		}
	}
	if creators != 1 {
		t.Fatalf("%d callers got created = true, want exactly 1", creators)
	}
	for i, r := range results {
		if r.id.UserID != userID {
			t.Errorf("caller %d: UserID %q, want %q", i, r.id.UserID, userID)
		}
	}
	if got := mustIdentity(t, s, "wechat", "wxA", openID); got.UserID != userID {
		t.Fatalf("stored UserID %q, want %q", got.UserID, userID)
	}
	users := 0
	for i := range n {
		_, err := s.GetUser(t.Context(), fmt.Sprint(userPrefix, i))
		switch {
		case err == nil:
			users++
		case !isNotFound(err):
			t.Fatalf("GetUser(%s%d): %v", userPrefix, i, err)
		}
	}
	if users != 1 {
		t.Fatalf("%d users exist, want 1", users)
	}
}

func testGetIdentityNotFound(t *testing.T, s store.Store) {
	_, err := s.GetIdentity(t.Context(), "wechat", "wxA", "o1")
	wantErr(t, "GetIdentity on an empty store", err, store.ErrNotFound)

	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	// Every part of the key counts.
	for _, k := range [][3]string{
		{"baidu", "wxA", "o1"},
		{"wechat", "wxB", "o1"},
		{"wechat", "wxA", "o2"},
	} {
		_, err := s.GetIdentity(t.Context(), platform.Family(k[0]), k[1], k[2])
		wantErr(t, fmt.Sprintf("GetIdentity(%s/%s/%s)", k[0], k[1], k[2]), err, store.ErrNotFound)
	}
}

func testGetUserNotFound(t *testing.T, s store.Store) {
	_, err := s.GetUser(t.Context(), "nobody")
	wantErr(t, "GetUser", err, store.ErrNotFound)
}
