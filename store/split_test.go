package store_test

import (
	"testing"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
	"github.com/mplogin/mplogin/store/storetest"
)

// TestSplitConformance runs the suite on a Split of two stores, so that
// every method is routed to a backend that implements it as documented.
func TestSplitConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.Split(memory.New(), memory.New())
	})
}

// sessionsOnly hides what a session store adds to store.SessionStore.
type sessionsOnly struct{ store.SessionStore }

// TestSplitConformanceTwoCalls runs the suite on a Split whose session
// store cannot write a code and a session in one step: Split's
// CreateLoginSession then makes two calls.
func TestSplitConformanceTwoCalls(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.Split(memory.New(), sessionsOnly{memory.New()})
	})
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
	if _, _, err := s.UpsertIdentity(ctx, store.IdentityUpsert{Platform: "wechat", AppID: "a", OpenID: "o", NewUserID: "u"}); err != nil {
		t.Fatal(err)
	}
	if _, err := durable.GetUser(ctx, "u"); err != nil {
		t.Errorf("the durable store does not hold the user: %v", err)
	}
	if _, err := sessions.GetUser(ctx, "u"); err == nil {
		t.Error("the session store holds the user")
	}
}
