package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

func adminTests(o options) []test {
	return []test{
		{"ListIdentities", testListIdentities},
		{"FindUserByUnionID", testFindUserByUnionID},
		{"ListUserSessions", testListUserSessions},
		{"Block", testBlock},
		{"Erase", testErase},
		{"EraseUnknown", testEraseUnknown},
		{"Merge", testMerge},
		{"MergeKeepsPhone", testMergeKeepsPhone},
		{"MergeRefused", testMergeRefused},
		{"MergeConcurrent", func(t *testing.T, s store.Store) { testMergeConcurrent(t, s, o) }},
		{"EraseConcurrent", func(t *testing.T, s store.Store) { testEraseConcurrent(t, s, o) }},
	}
}

// identitySession returns a live session named sid of the identity id,
// created at created.
func identitySession(sid string, id store.Identity, created time.Time) store.Session {
	sess := newSession(sid)
	sess.UserID, sess.Family, sess.AppID, sess.OpenID, sess.UnionID = id.UserID, id.Family, id.AppID, id.OpenID, id.UnionID
	sess.CreatedAt, sess.LastUsedAt = created, created
	return sess
}

func testListIdentities(t *testing.T, s store.Store) {
	// b is older by CreatedAt but joins a's user through the unionid later.
	a, _ := mustUpsert(t, s, upsert("wxB", "o1", "un", sealed("k"), "u1", at(time.Minute)))
	c, _ := mustUpsert(t, s, upsert("wxA", "o3", "un", nil, "", at(time.Minute)))
	b, _ := mustUpsert(t, s, upsert("wxC", "o2", "un", nil, "", at(2*time.Minute)))
	mustUpsert(t, s, upsert("wxD", "o4", "", nil, "u2", base))
	got, err := s.ListIdentities(t.Context(), "u1")
	if err != nil {
		t.Fatalf("ListIdentities: %v", err)
	}
	want := []store.Identity{c, a, b} // by CreatedAt, then app ID
	if len(got) != len(want) {
		t.Fatalf("ListIdentities(u1) = %d identities, want %d", len(got), len(want))
	}
	for i := range want {
		wantEqual(t, fmt.Sprintf("identity %d", i), want[i], got[i])
	}
	none, err := s.ListIdentities(t.Context(), "nobody")
	if err != nil || len(none) != 0 {
		t.Fatalf("ListIdentities(nobody) = %v, %v; want none, nil", none, err)
	}
}

func testFindUserByUnionID(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "un1", nil, "u1", base))
	mustUpsert(t, s, upsert("wxB", "o2", "un1", nil, "u2", at(time.Minute))) // joins u1
	mustUpsert(t, s, upsert("wxC", "o3", "", nil, "u3", base))
	u, err := s.FindUserByUnionID(t.Context(), "wechat", "un1")
	if err != nil {
		t.Fatalf("FindUserByUnionID: %v", err)
	}
	wantEqual(t, "user", store.User{ID: "u1", CreatedAt: base}, u)
	_, err = s.FindUserByUnionID(t.Context(), "wechat", "un2")
	wantErr(t, "FindUserByUnionID of an unknown unionid", err, store.ErrNotFound)
	_, err = s.FindUserByUnionID(t.Context(), "baidu", "un1")
	wantErr(t, "FindUserByUnionID of another family", err, store.ErrNotFound)
}

func testListUserSessions(t *testing.T, s store.Store) {
	id, _ := mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	other, _ := mustUpsert(t, s, upsert("wxA", "o2", "", nil, "u2", base))
	old := identitySession("s1", id, base)
	newer := identitySession("s2", id, at(time.Hour))
	tie := identitySession("s3", id, at(time.Hour)) // same time: by ID, descending
	revoked := identitySession("s4", id, at(2*time.Hour))
	expired := identitySession("s5", id, at(2*time.Hour))
	expired.RefreshExpiresAt = at(3 * time.Hour)
	ended := identitySession("s6", id, at(2*time.Hour))
	ended.ExpiresAt = at(3 * time.Hour)
	for _, sess := range []store.Session{old, newer, tie, revoked, expired, ended, identitySession("s7", other, at(5*time.Hour))} {
		mustCreateSession(t, s, sess)
	}
	if err := s.RevokeSession(t.Context(), "s4", at(2*time.Hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	got, err := s.ListUserSessions(t.Context(), "u1", at(3*time.Hour))
	if err != nil {
		t.Fatalf("ListUserSessions: %v", err)
	}
	want := []store.Session{tie, newer, old}
	if len(got) != len(want) {
		t.Fatalf("ListUserSessions = %d sessions, want %d", len(got), len(want))
	}
	for i := range want {
		wantEqual(t, fmt.Sprintf("session %d", i), want[i], got[i])
	}
	if got, err := s.ListUserSessions(t.Context(), "nobody", base); err != nil || len(got) != 0 {
		t.Fatalf("ListUserSessions(nobody) = %v, %v; want none, nil", got, err)
	}
}

func testBlock(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	if err := s.SetBlocked(t.Context(), "u1", true, "spam", at(time.Hour)); err != nil {
		t.Fatalf("SetBlocked: %v", err)
	}
	wantEqual(t, "blocked user", store.User{ID: "u1", CreatedAt: base, Blocked: true, BlockedReason: "spam", BlockedAt: at(time.Hour)},
		mustUser(t, s, "u1"))
	if err := s.SetBlocked(t.Context(), "u1", false, "ignored", at(2*time.Hour)); err != nil {
		t.Fatalf("SetBlocked(false): %v", err)
	}
	wantEqual(t, "unblocked user", store.User{ID: "u1", CreatedAt: base}, mustUser(t, s, "u1"))
	wantErr(t, "SetBlocked of an unknown user", s.SetBlocked(t.Context(), "nobody", true, "", base), store.ErrNotFound)
}

// EraseFixture is what WriteEraseFixture wrote: the user to erase and the
// strings and bytes that must leave no trace once it is erased.
type EraseFixture struct {
	UserID      string
	OpenIDs     []string
	UnionID     string
	SealedPhone []byte
	PhoneLookup []byte
	// Kept is a user of another person, whose data the erasure must keep.
	Kept string
}

// WriteEraseFixture writes a user with two identities (one with a unionid),
// a phone number, sessions of both, one with rotated refresh tokens (one
// spent with a successor), and a login code of each identity; and another
// user beside them. The backends' "no trace" tests run EraseUser on it and
// look through everything they hold.
func WriteEraseFixture(t *testing.T, s store.Store) EraseFixture {
	t.Helper()
	f := EraseFixture{UserID: "erase-user-1", OpenIDs: []string{"erase-open-a", "erase-open-b"},
		UnionID: "erase-union-1", SealedPhone: []byte("sealed-phone:erase-13800000000"),
		PhoneLookup: []byte("phone-lookup:erase-13800000000"), Kept: "kept-user"}
	a, _ := mustUpsert(t, s, upsert("wxA", f.OpenIDs[0], f.UnionID, sealed("ka"), f.UserID, base))
	mustUpsert(t, s, upsert("wxA", f.OpenIDs[0], "", sealed("ka2"), "", at(time.Minute))) // a previous key
	// b has no unionid: it comes to the user by a merge.
	mustUpsert(t, s, upsert("wxB", f.OpenIDs[1], "", sealed("kb"), "erase-user-tmp", base))
	if err := s.MergeUsers(t.Context(), f.UserID, "erase-user-tmp", base); err != nil {
		t.Fatalf("MergeUsers: %v", err)
	}
	b := mustIdentity(t, s, "wechat", "wxB", f.OpenIDs[1])
	k, _ := mustUpsert(t, s, upsert("wxA", "kept-open", "kept-union", sealed("kk"), f.Kept, base))
	mustSetPhone(t, s, f.UserID, store.Phone{Sealed: f.SealedPhone, Lookup: f.PhoneLookup, Source: store.PhoneFromPlatform, App: "main", UpdatedAt: base})
	mustCreateSession(t, s, identitySession("erase-s1", a, base))
	mustCreateSession(t, s, identitySession("erase-s2", b, base))
	mustCreateSession(t, s, identitySession("kept-s", k, base))
	r := rotation(hash("mpr_0_erase-s1"), "erase-g1", at(time.Hour))
	mustRotate(t, s, r)
	r2 := rotation(r.NewRefreshHash, "erase-g2", at(2*time.Hour))
	r2.Successor, r2.SuccessorUntil = []byte("sealed-successor"), at(3*time.Hour)
	mustRotate(t, s, r2)
	for i, id := range []store.Identity{a, b, k} {
		c := newCode(fmt.Sprintf("erase-%d", i), at(day))
		c.AppID, c.OpenID = id.AppID, id.OpenID
		if err := s.PutCode(t.Context(), c); err != nil {
			t.Fatalf("PutCode: %v", err)
		}
	}
	return f
}

func testErase(t *testing.T, s store.Store) {
	f := WriteEraseFixture(t, s)
	if err := s.EraseUser(t.Context(), f.UserID, at(3*time.Hour)); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	ctx := t.Context()
	_, err := s.GetUser(ctx, f.UserID)
	wantErr(t, "GetUser after erase", err, store.ErrNotFound)
	for i, app := range []string{"wxA", "wxB"} {
		_, err := s.GetIdentity(ctx, "wechat", app, f.OpenIDs[i])
		wantErr(t, "GetIdentity after erase", err, store.ErrNotFound)
		_, _, err = s.ReserveDecryptAttempt(ctx, "wechat", app, f.OpenIDs[i], 3)
		wantErr(t, "ReserveDecryptAttempt after erase", err, store.ErrNotFound)
	}
	_, err = s.FindUserByUnionID(ctx, "wechat", f.UnionID)
	wantErr(t, "FindUserByUnionID after erase", err, store.ErrNotFound)
	if l, err := s.FindUsersByPhone(ctx, [][]byte{f.PhoneLookup}); err != nil || len(l) != 0 {
		t.Fatalf("FindUsersByPhone after erase = %d users, %v; want none", len(l), err)
	}
	for _, id := range []string{"erase-s1", "erase-s2"} {
		_, err := s.SessionByID(ctx, id)
		wantErr(t, "SessionByID after erase", err, store.ErrNotFound)
	}
	for _, h := range [][]byte{hash("mpa_erase-g2"), hash("mpa_0_erase-s2"), hash("mpa_erase-g1")} {
		_, err := s.SessionByAccess(ctx, h)
		wantErr(t, "SessionByAccess after erase", err, store.ErrNotFound)
		_, err = s.SessionForLogout(ctx, h)
		wantErr(t, "SessionForLogout after erase", err, store.ErrNotFound)
	}
	_, err = s.SessionByRefresh(ctx, hash("mpr_erase-g2"))
	wantErr(t, "SessionByRefresh after erase", err, store.ErrNotFound)
	for _, h := range [][]byte{hash("mpr_0_erase-s1"), hash("mpr_erase-g1"), hash("mpr_erase-g2")} {
		_, err := s.RotateRefresh(ctx, rotation(h, "erase-g3", at(2*time.Hour)))
		wantErr(t, "RotateRefresh of an erased token", err, store.ErrNotFound)
	}
	for i := range 2 {
		_, err := s.GetCode(ctx, hash(fmt.Sprintf("code:erase-%d", i)), base)
		wantErr(t, "GetCode after erase", err, store.ErrNotFound)
	}
	if l, err := s.ListIdentities(ctx, f.UserID); err != nil || len(l) != 0 {
		t.Fatalf("ListIdentities after erase = %v, %v", l, err)
	}
	if l, err := s.ListUserSessions(ctx, f.UserID, base); err != nil || len(l) != 0 {
		t.Fatalf("ListUserSessions after erase = %v, %v", l, err)
	}
	// The other user is untouched.
	mustUser(t, s, f.Kept)
	mustSessionByID(t, s, "kept-s")
	if _, err := s.GetCode(ctx, hash("code:erase-2"), base); err != nil {
		t.Fatalf("GetCode of the kept user's code: %v", err)
	}
	// A new login of an erased identity is a new user.
	id, created := mustUpsert(t, s, upsert("wxA", f.OpenIDs[0], f.UnionID, sealed("new"), "erase-user-2", at(4*time.Hour)))
	if !created || id.UserID != "erase-user-2" {
		t.Fatalf("UpsertIdentity after erase = user %s, created %v; want erase-user-2, created", id.UserID, created)
	}
}

func testEraseUnknown(t *testing.T, s store.Store) {
	wantErr(t, "EraseUser of an unknown user", s.EraseUser(t.Context(), "nobody", base), store.ErrNotFound)
}

func testMerge(t *testing.T, s store.Store) {
	ctx := t.Context()
	into, _ := mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	f1, _ := mustUpsert(t, s, upsert("wxA", "o2", "un2", nil, "u2", base))
	f2, _ := mustUpsert(t, s, upsert("wxB", "o3", "un2", nil, "", base))
	mustSetPhone(t, s, "u2", newPhone("2", base))
	mustCreateSession(t, s, identitySession("s1", into, base))
	mustCreateSession(t, s, identitySession("s2", f1, base))
	mustCreateSession(t, s, identitySession("s3", f2, at(time.Minute)))
	mustRotate(t, s, rotation(hash("mpr_0_s3"), "g1", at(time.Hour)))
	if err := s.MergeUsers(ctx, "u1", "u2", at(2*time.Hour)); err != nil {
		t.Fatalf("MergeUsers: %v", err)
	}
	for _, id := range []store.Identity{f1, f2} {
		if got := mustIdentity(t, s, id.Family, id.AppID, id.OpenID).UserID; got != "u1" {
			t.Errorf("identity %s after merge has user %s, want u1", id.OpenID, got)
		}
	}
	for _, h := range [][]byte{hash("mpa_0_s2"), hash("mpa_g1")} {
		sess, err := s.SessionByAccess(ctx, h)
		if err != nil {
			t.Fatalf("SessionByAccess after merge: %v", err)
		}
		if sess.UserID != "u1" {
			t.Errorf("session %s after merge has user %s, want u1", sess.ID, sess.UserID)
		}
	}
	// The tokens keep working.
	sess := mustRotate(t, s, rotation(hash("mpr_g1"), "g2", at(3*time.Hour)))
	if sess.UserID != "u1" {
		t.Errorf("rotated session has user %s, want u1", sess.UserID)
	}
	_, err := s.GetUser(ctx, "u2")
	wantErr(t, "GetUser of the merged user", err, store.ErrNotFound)
	wantEqual(t, "phone moved", newPhone("2", base), mustUser(t, s, "u1").Phone)
	l, err := s.ListUserSessions(ctx, "u1", at(3*time.Hour))
	if err != nil || len(l) != 3 {
		t.Fatalf("ListUserSessions(u1) after merge = %d sessions, %v; want 3", len(l), err)
	}
	if l, err := s.ListUserSessions(ctx, "u2", at(3*time.Hour)); err != nil || len(l) != 0 {
		t.Fatalf("ListUserSessions(u2) after merge = %d sessions, %v; want none", len(l), err)
	}
	// RevokeUserSessions of into reaches the moved sessions.
	if n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u1", Now: at(4 * time.Hour)}); err != nil || n != 3 {
		t.Fatalf("RevokeUserSessions(u1) = %d, %v; want 3", n, err)
	}
	u, err := s.FindUserByUnionID(ctx, "wechat", "un2")
	if err != nil || u.ID != "u1" {
		t.Fatalf("FindUserByUnionID after merge = %s, %v; want u1", u.ID, err)
	}
}

func testMergeKeepsPhone(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	mustUpsert(t, s, upsert("wxA", "o2", "", nil, "u2", base))
	mustSetPhone(t, s, "u1", newPhone("1", base))
	mustSetPhone(t, s, "u2", newPhone("2", at(time.Hour)))
	if err := s.MergeUsers(t.Context(), "u1", "u2", at(2*time.Hour)); err != nil {
		t.Fatalf("MergeUsers: %v", err)
	}
	wantEqual(t, "phone of into", newPhone("1", base), mustUser(t, s, "u1").Phone)
}

func testMergeRefused(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	wantErr(t, "MergeUsers into itself", s.MergeUsers(t.Context(), "u1", "u1", base), store.ErrSelfMerge)
	wantErr(t, "MergeUsers from an unknown user", s.MergeUsers(t.Context(), "u1", "nobody", base), store.ErrNotFound)
	wantErr(t, "MergeUsers into an unknown user", s.MergeUsers(t.Context(), "nobody", "u1", base), store.ErrNotFound)
	mustUser(t, s, "u1")
	if got := mustIdentity(t, s, "wechat", "wxA", "o1").UserID; got != "u1" {
		t.Fatalf("identity after refused merges has user %s", got)
	}
}

// testMergeConcurrent merges while both users log in. On a split store a
// login whose identity was read before the merge and whose session is
// written after it may still carry from (see store.Split); there only the
// identities are checked.
func testMergeConcurrent(t *testing.T, s store.Store, o options) {
	ctx := t.Context()
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	mustUpsert(t, s, upsert("wxA", "o2", "", nil, "u2", base))
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*n+1)
	start := make(chan struct{})
	for i := range n {
		for _, open := range []string{"o1", "o2"} {
			wg.Go(func() {
				<-start
				in := loginWrite("wxA", open, "", "never", fmt.Sprintf("%s-%d", open, i))
				if _, err := s.WriteLogin(ctx, in); err != nil {
					errs <- fmt.Errorf("WriteLogin: %w", err)
				}
			})
		}
	}
	wg.Go(func() {
		<-start
		if err := s.MergeUsers(ctx, "u1", "u2", at(time.Hour)); err != nil {
			errs <- fmt.Errorf("MergeUsers: %w", err)
		}
	})
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, open := range []string{"o1", "o2"} {
		if got := mustIdentity(t, s, "wechat", "wxA", open).UserID; got != "u1" {
			t.Errorf("identity %s after merge has user %s, want u1", open, got)
		}
	}
	if o.splitLogin {
		return
	}
	if l, err := s.ListUserSessions(ctx, "u2", base); err != nil || len(l) != 0 {
		t.Errorf("ListUserSessions(u2) after merge = %d sessions, %v; want none", len(l), err)
	}
	for i := range n {
		for _, open := range []string{"o1", "o2"} {
			sess := mustSessionByID(t, s, fmt.Sprintf("%s-%d", open, i))
			if sess.UserID != "u1" {
				t.Errorf("session %s has user %s, want u1", sess.ID, sess.UserID)
			}
		}
	}
}

// testEraseConcurrent erases a user while its identity logs in: every
// login succeeds, either before the erasure (its session is erased with
// the user) or after it (a new user, whose session lives).
func testEraseConcurrent(t *testing.T, s store.Store, o options) {
	ctx := t.Context()
	mustUpsert(t, s, upsert("wxA", "o1", "", nil, "u1", base))
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	results := make(chan store.LoginResult, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := s.WriteLogin(ctx, loginWrite("wxA", "o1", "", fmt.Sprintf("n%d", i), fmt.Sprintf("s%d", i)))
			if err != nil {
				errs <- fmt.Errorf("WriteLogin: %w", err)
				return
			}
			results <- res
		})
	}
	wg.Go(func() {
		<-start
		if err := s.EraseUser(ctx, "u1", at(time.Hour)); err != nil {
			errs <- fmt.Errorf("EraseUser: %w", err)
		}
	})
	close(start)
	wg.Wait()
	close(errs)
	close(results)
	for err := range errs {
		t.Error(err)
	}
	_, err := s.GetUser(ctx, "u1")
	wantErr(t, "GetUser of the erased user", err, store.ErrNotFound)
	// A login after the erasure made the identity again, for a new user.
	id, err := s.GetIdentity(ctx, "wechat", "wxA", "o1")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIdentity: %v", err)
	}
	for res := range results {
		sess, err := s.SessionByID(ctx, res.Session.ID)
		if res.Identity.UserID == "u1" {
			if err == nil && !o.splitLogin {
				t.Errorf("session %s of the erased user outlived it", res.Session.ID)
			}
			continue
		}
		if res.Identity.UserID != id.UserID {
			t.Errorf("login after the erasure: user %s, but the identity has %s", res.Identity.UserID, id.UserID)
		}
		if err != nil {
			t.Errorf("session %s of a login after the erasure: %v", res.Session.ID, err)
		} else if sess.UserID != id.UserID {
			t.Errorf("session %s has user %s, want %s", sess.ID, sess.UserID, id.UserID)
		}
		mustUser(t, s, res.Identity.UserID)
	}
}
