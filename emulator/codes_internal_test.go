package emulator

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
)

func newTestEmulator(cfg Config) (*Emulator, *testutil.Clock) {
	c := testutil.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg.Now = c.Now
	return New(cfg), c
}

func openExchange(e *Emulator, platform, code string) outcome {
	_, oc := e.exchange(exchangeReq{platform: platform, appid: "app", code: code})
	return oc
}

// A used code is refused for exactly its lifetime, whichever generation it
// has moved to meanwhile.
func TestOpenCodeRememberedForItsLifetime(t *testing.T) {
	e, c := newTestEmulator(Config{OpenCodes: true})
	start := c.Now()
	steps := []struct {
		at   time.Duration
		code string
		want outcome
	}{
		{9 * time.Minute, "alice.1", granted},                  // expires at 19m
		{10 * time.Minute, "bob.1", granted},                   // retires the first generation
		{18*time.Minute + 59*time.Second, "alice.1", usedCode}, // still remembered, from prev
		{19 * time.Minute, "alice.1", granted},                 // expired: accepted again
		{19 * time.Minute, "alice.1", usedCode},
	}
	for _, s := range steps {
		c.Set(start.Add(s.at))
		if got := openExchange(e, baidu, s.code); got != s.want {
			t.Errorf("at %v, %s: outcome %d, want %d", s.at, s.code, got, s.want)
		}
	}
}

func TestCodeMemoryBounded(t *testing.T) {
	e, c := newTestEmulator(Config{OpenCodes: true})
	for i := range 1000 {
		if oc := openExchange(e, wechat, fmt.Sprintf("u%d.x", i)); oc != granted {
			t.Fatalf("open code %d: outcome %d", i, oc)
		}
		if _, err := e.Login(wechat, "app", "alice", ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.codes.open.len() + e.codes.minted.len(); n != 2000 {
		t.Fatalf("%d codes remembered, want 2000", n)
	}
	c.Advance(2 * maxCodeLife)
	openExchange(e, wechat, "last.x")
	if n, m := e.codes.open.len(), e.codes.minted.len(); n != 1 || m != 0 {
		t.Errorf("after every code expired: %d open and %d minted codes remembered, want 1 and 0", n, m)
	}
}

func TestUsersBounded(t *testing.T) {
	e, _ := newTestEmulator(Config{OpenCodes: true})
	e.usersPerGen = 4
	for i := range 10 {
		if oc := openExchange(e, wechat, fmt.Sprintf("user%d.x", i)); oc != granted {
			t.Fatalf("user %d: outcome %d", i, oc)
		}
	}
	if n := e.users.len(); n > 8 {
		t.Errorf("%d users remembered, want at most 8", n)
	}
	if _, ok := e.SessionKey(wechat, "app", "user9"); !ok {
		t.Error("the latest user was forgotten")
	}
	if _, ok := e.SessionKey(wechat, "app", "user0"); ok {
		t.Error("the oldest user is still remembered")
	}
}

func TestRandomSourceFailure(t *testing.T) {
	e, _ := newTestEmulator(Config{Rand: zeroReader{}})
	if _, err := e.Login(wechat, "app", "alice", ""); err != nil {
		t.Fatalf("first code: %v", err)
	}
	if _, err := e.Login(wechat, "app", "alice", ""); err == nil {
		t.Error("a source repeating itself minted a duplicate code")
	}
	e, _ = newTestEmulator(Config{Rand: ffReader{}})
	if _, err := e.Login(wechat, "app", "alice", ""); err == nil {
		t.Error("a source with no usable bytes minted a code")
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

type ffReader struct{}

func (ffReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 0xff
	}
	return len(b), nil
}

func BenchmarkOpenCodeExchange(b *testing.B) {
	e, _ := newTestEmulator(Config{OpenCodes: true})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, oc := e.exchange(exchangeReq{platform: wechat, appid: "app", code: fmt.Sprintf("u%d.%d", i%1000, i)}); oc != granted {
			b.Fatal(oc)
		}
	}
}

func BenchmarkOpenCodeHTTP(b *testing.B) {
	e, _ := newTestEmulator(Config{OpenCodes: true})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest("GET", fmt.Sprintf("/sns/jscode2session?appid=app&secret=s&js_code=u%d.%d&grant_type=authorization_code", i%1000, i), nil)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != 200 || !strings.Contains(w.Body.String(), "openid") {
			b.Fatal(w.Body.String())
		}
	}
}
