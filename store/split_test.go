package store_test

import (
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
	"github.com/mplogin/mplogin/store/storetest"
)

// TestSplitConformance runs the suite on a Split of two stores, so that
// every method is routed to a backend that implements it as documented.
func TestSplitConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.Split(memory.New(), memory.New())
	}, storetest.SplitLogin())
}

// TestSplitRoutes checks that sessions and codes go to the session store
// and nothing else does.
func TestSplitRoutes(t *testing.T) {
	durable, sessions := memory.New(), memory.New()
	s := store.Split(durable, sessions)
	ctx := t.Context()
	if err := s.CreateSession(ctx, store.Session{ID: "s1", AccessHash: []byte{1}, RefreshHash: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.SessionByID(ctx, "s1"); err != nil {
		t.Errorf("the session store does not hold the session: %v", err)
	}
	if _, err := durable.SessionByID(ctx, "s1"); err == nil {
		t.Error("the durable store holds the session")
	}
	if _, _, err := s.UpsertIdentity(ctx, store.IdentityUpsert{Family: "wechat", AppID: "a", OpenID: "o", NewUserID: "u"}); err != nil {
		t.Fatal(err)
	}
	if _, err := durable.GetUser(ctx, "u"); err != nil {
		t.Errorf("the durable store does not hold the user: %v", err)
	}
	if _, err := sessions.GetUser(ctx, "u"); err == nil {
		t.Error("the session store holds the user")
	}
}

// TestSplitWriteLoginRoutes checks that a login's identity goes to the
// durable store and its code and session to the session store.
func TestSplitWriteLoginRoutes(t *testing.T) {
	durable, sessions := memory.New(), memory.New()
	s := store.Split(durable, sessions)
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := s.WriteLogin(ctx, store.LoginWrite{
		Identity: store.IdentityUpsert{Family: "wechat", AppID: "a", OpenID: "o", NewUserID: "u", Now: now},
		Code:     store.ExchangedCode{Hash: []byte("code"), App: "main", Family: "wechat", AppID: "a", OpenID: "o", SessionID: "s1", ExpiresAt: now.Add(time.Minute)},
		Session: store.Session{ID: "s1", App: "main", Family: "wechat", AppID: "a", OpenID: "o",
			AccessHash: []byte{1}, RefreshHash: []byte{2}, CreatedAt: now,
			AccessExpiresAt: now.Add(time.Hour), RefreshExpiresAt: now.Add(time.Hour)},
		Keep: 5,
	})
	if err != nil || res.Session.UserID != "u" || !res.Created {
		t.Fatalf("WriteLogin = %+v, %v; want a new identity of user u, its session", res, err)
	}
	if _, err := durable.GetUser(ctx, "u"); err != nil {
		t.Errorf("the durable store does not hold the user: %v", err)
	}
	if _, err := sessions.GetUser(ctx, "u"); err == nil {
		t.Error("the session store holds the user")
	}
	if got, err := sessions.SessionByID(ctx, "s1"); err != nil || got.UserID != "u" {
		t.Errorf("the session store has session %+v, %v; want it, of user u", got, err)
	}
	if _, err := durable.SessionByID(ctx, "s1"); err == nil {
		t.Error("the durable store holds the session")
	}
	if _, err := sessions.GetCode(ctx, []byte("code"), now); err != nil {
		t.Errorf("the session store does not hold the code: %v", err)
	}
	if _, err := durable.GetCode(ctx, []byte("code"), now); err == nil {
		t.Error("the durable store holds the code")
	}
}
