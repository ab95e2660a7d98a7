package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

func loginTests(o options) []test {
	return []test{
		{"NewIdentity", testWriteLoginNew},
		{"JoinsUnionID", testWriteLoginUnion},
		{"AllOrNothing", func(t *testing.T, s store.Store) { testWriteLoginAtomic(t, s, o) }},
		{"Concurrent", testWriteLoginConcurrent},
		{"Blocked", testWriteLoginBlocked},
	}
}

// loginWrite is a login of the WeChat identity (app, openID) with a session
// named sid whose user fields are wrong on purpose: WriteLogin sets them.
func loginWrite(app, openID, unionID, newUser, sid string) store.LoginWrite {
	sess := newSession(sid)
	sess.AppID, sess.OpenID = app, openID
	sess.UserID, sess.UnionID = "not-"+newUser, "not-"+unionID
	c := newCode(sid, at(5*time.Minute))
	c.AppID, c.OpenID = app, openID
	return store.LoginWrite{Identity: upsert(app, openID, unionID, sealed("k-"+sid), newUser, base), Code: c, Session: sess}
}

func testWriteLoginNew(t *testing.T, s store.Store) {
	in := loginWrite("wxA", "o1", "un1", "u1", "s1")
	res, err := s.WriteLogin(t.Context(), in)
	if err != nil {
		t.Fatalf("WriteLogin: %v", err)
	}
	id, created := res.Identity, res.Created
	if !created || id.UserID != "u1" || id.UnionID != "un1" {
		t.Fatalf("WriteLogin = %+v, created %v; want user u1, unionid un1, created", id, created)
	}
	wantEqual(t, "identity", id, mustIdentity(t, s, "wechat", "wxA", "o1"))
	want := in.Session
	want.UserID, want.UnionID = "u1", "un1"
	wantEqual(t, "the session WriteLogin returned", want, res.Session)
	gc, err := s.GetCode(t.Context(), in.Code.Hash, base)
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	wantEqual(t, "code", in.Code, gc)
	wantEqual(t, "session by ID", want, mustSessionByID(t, s, "s1"))
	got, err := s.SessionByAccess(t.Context(), in.Session.AccessHash)
	if err != nil {
		t.Fatalf("SessionByAccess: %v", err)
	}
	wantEqual(t, "session by access hash", want, got)
	c, err := s.GetCode(t.Context(), in.Code.Hash, base)
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	wantEqual(t, "code", in.Code, c)
	// The session's first refresh token rotates like CreateSession's.
	mustRotate(t, s, rotation(in.Session.RefreshHash, "s1-2", at(hour)))

	// The same identity again: no new user, the new session key current.
	again := loginWrite("wxA", "o1", "", "u2", "s2")
	res, err = s.WriteLogin(t.Context(), again)
	if err != nil {
		t.Fatalf("WriteLogin again: %v", err)
	}
	id, created = res.Identity, res.Created
	if created || id.UserID != "u1" || id.UnionID != "un1" || string(id.SessionKey) != string(sealed("k-s2")) {
		t.Fatalf("WriteLogin again = %+v, created %v", id, created)
	}
	if sess := mustSessionByID(t, s, "s2"); sess.UserID != "u1" || sess.UnionID != "un1" {
		t.Fatalf("second session has user %q, unionid %q; want u1, un1", sess.UserID, sess.UnionID)
	}
}

func testWriteLoginUnion(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "oA", "shared", sealed("k"), "uA", base))
	res, err := s.WriteLogin(t.Context(), loginWrite("wxB", "oB", "shared", "uB", "sB"))
	if err != nil {
		t.Fatalf("WriteLogin: %v", err)
	}
	id, created := res.Identity, res.Created
	if created || id.UserID != "uA" {
		t.Fatalf("WriteLogin = user %q, created %v; want uA's user, not created", id.UserID, created)
	}
	if sess := mustSessionByID(t, s, "sB"); sess.UserID != "uA" || sess.UnionID != "shared" {
		t.Fatalf("session has user %q, unionid %q; want uA, shared", sess.UserID, sess.UnionID)
	}
}

// A login whose session cannot be stored leaves no code, and no identity
// or user unless the store writes the identity apart (SplitLogin).
func testWriteLoginAtomic(t *testing.T, s store.Store, o options) {
	mustCreateSession(t, s, newSession("taken"))
	in := loginWrite("wxA", "o-new", "", "u-new", "s-new")
	in.Session.AccessHash = newSession("taken").AccessHash // already in use
	if _, err := s.WriteLogin(t.Context(), in); err == nil {
		t.Fatal("WriteLogin with an access hash in use: no error")
	}
	if !o.splitLogin {
		if _, err := s.GetIdentity(t.Context(), "wechat", "wxA", "o-new"); !isNotFound(err) {
			t.Fatalf("GetIdentity after a failed WriteLogin: %v, want not found", err)
		}
		if _, err := s.GetUser(t.Context(), "u-new"); !isNotFound(err) {
			t.Fatalf("GetUser after a failed WriteLogin: %v, want not found", err)
		}
	}
	if _, err := s.GetCode(t.Context(), in.Code.Hash, base); !isNotFound(err) {
		t.Fatalf("GetCode after a failed WriteLogin: %v, want not found", err)
	}
	if _, err := s.SessionByID(t.Context(), "s-new"); !isNotFound(err) {
		t.Fatalf("SessionByID after a failed WriteLogin: %v, want not found", err)
	}
}

// Concurrent logins of one new identity create one user, and every session
// belongs to it.
func testWriteLoginConcurrent(t *testing.T, s store.Store) {
	const n = 16
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
			res, err := s.WriteLogin(t.Context(), loginWrite("wxA", "o-race", "", fmt.Sprint("u", i), fmt.Sprint("s", i)))
			results[i] = result{res.Identity, res.Created, err}
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
			creators, userID = creators+1, r.id.UserID
		}
	}
	if creators != 1 {
		t.Fatalf("%d callers got created = true, want exactly 1", creators)
	}
	for i := range n {
		if sess := mustSessionByID(t, s, fmt.Sprint("s", i)); sess.UserID != userID {
			t.Errorf("session %d has user %q, want %q", i, sess.UserID, userID)
		}
	}
}

// WriteLogin reports the block of the identity's user, whichever way the
// identity comes to it.
func testWriteLoginBlocked(t *testing.T, s store.Store) {
	login := func(what string, in store.LoginWrite, want bool) {
		t.Helper()
		res, err := s.WriteLogin(t.Context(), in)
		if err != nil {
			t.Fatalf("WriteLogin (%s): %v", what, err)
		}
		if res.Blocked != want {
			t.Errorf("WriteLogin (%s): Blocked = %v, want %v", what, res.Blocked, want)
		}
	}
	login("new user", loginWrite("wxA", "o1", "un1", "u1", "s1"), false)
	login("returning, not blocked", loginWrite("wxA", "o1", "", "u2", "s2"), false)
	if err := s.SetBlocked(t.Context(), "u1", true, "spam", at(time.Minute)); err != nil {
		t.Fatalf("SetBlocked: %v", err)
	}
	login("returning, blocked", loginWrite("wxA", "o1", "", "u3", "s3"), true)
	login("new identity of the blocked user's unionid", loginWrite("wxB", "o2", "un1", "u4", "s4"), true)
	login("another user", loginWrite("wxA", "o3", "", "u5", "s5"), false)
	if err := s.SetBlocked(t.Context(), "u1", false, "", at(2*time.Minute)); err != nil {
		t.Fatalf("SetBlocked(false): %v", err)
	}
	login("returning, unblocked", loginWrite("wxB", "o2", "", "u6", "s6"), false)
}
