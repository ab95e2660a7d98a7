package emulator

import (
	"fmt"
	"testing"
)

// Phone codes live with the login codes and are forgotten with them.
func TestPhoneCodeMemoryBounded(t *testing.T) {
	e, c := newTestEmulator(Config{})
	for i := range 500 {
		if _, err := e.PhoneCode("app", fmt.Sprintf("u%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.codes.minted.len(); n != 500 {
		t.Fatalf("%d codes remembered, want 500", n)
	}
	c.Advance(2 * maxCodeLife)
	if _, err := e.PhoneCode("app", "last"); err != nil {
		t.Fatal(err)
	}
	if n := e.codes.minted.len(); n != 1 {
		t.Errorf("after every code expired: %d remembered, want 1", n)
	}
}

// Replacing a remembered user's key (a reset, a new login) neither adds a
// user nor retires a generation.
func TestRememberReplacesInPlace(t *testing.T) {
	e, _ := newTestEmulator(Config{OpenCodes: true})
	e.usersPerGen = 4
	for i := range 4 {
		if oc := openExchange(e, wechat, fmt.Sprintf("user%d.x", i)); oc != granted {
			t.Fatalf("user %d: outcome %d", i, oc)
		}
	}
	for i := range 10 {
		if oc := openExchange(e, wechat, fmt.Sprintf("user0.%d", i)); oc != granted {
			t.Fatalf("login %d: outcome %d", i, oc)
		}
	}
	if len(e.users.cur) != 4 || len(e.users.prev) != 0 {
		t.Errorf("cur %d, prev %d users; want 4 and 0", len(e.users.cur), len(e.users.prev))
	}
	for i := range 4 {
		if _, ok := e.SessionKey(wechat, "app", fmt.Sprintf("user%d", i)); !ok {
			t.Errorf("user%d forgotten", i)
		}
	}
}
