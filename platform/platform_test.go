package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
)

func TestIntAcceptsNumberAndString(t *testing.T) {
	cases := map[string]int64{`40029`: 40029, `"40029"`: 40029, `" -1 "`: -1, `null`: 0, `""`: 0, `40029.0`: 40029, `-1`: -1}
	for in, want := range cases {
		var n platform.Int
		if err := json.Unmarshal([]byte(in), &n); err != nil || int64(n) != want {
			t.Errorf("%s: got %d, %v; want %d", in, n, err, want)
		}
	}
	for _, bad := range []string{`"abc"`, `true`, `{}`, `1.5`, `"1e400"`} {
		var n platform.Int
		if err := json.Unmarshal([]byte(bad), &n); err == nil {
			t.Errorf("%s: accepted as %d", bad, n)
		}
	}
}

func TestScrub(t *testing.T) {
	got := platform.Scrub("invalid code abc123, rid: x", "abc123", "")
	if strings.Contains(got, "abc123") || !strings.Contains(got, "rid: x") {
		t.Fatalf("got %q", got)
	}
	if long := platform.Scrub(strings.Repeat("x", 2000)); len(long) > 520 {
		t.Fatalf("not capped: %d", len(long))
	}
}

func TestKindOf(t *testing.T) {
	if k := platform.KindOf(&platform.Error{Kind: platform.KindCodeUsed}); k != platform.KindCodeUsed {
		t.Fatal(k)
	}
	if k := platform.KindOf(context.DeadlineExceeded); k != platform.KindUnavailable {
		t.Fatal(k)
	}
	if k := platform.KindOf(errors.New("x")); k != platform.KindUnknown {
		t.Fatal(k)
	}
	for _, k := range []platform.Kind{platform.KindInvalidCode, platform.KindCodeUsed, platform.KindUserBlocked, platform.KindRateLimited} {
		if !k.UserError() {
			t.Errorf("%v should be a user error", k)
		}
	}
	for _, k := range []platform.Kind{platform.KindBusy, platform.KindUnavailable, platform.KindBadCredentials, platform.KindUnknown} {
		if k.UserError() {
			t.Errorf("%v should not be a user error", k)
		}
	}
}

func TestOnceRetriesOnlyWhenNothingWasSent(t *testing.T) {
	dialErr := &platform.Error{Kind: platform.KindUnavailable, Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}
	readErr := &platform.Error{Kind: platform.KindUnavailable, Err: &net.OpError{Op: "read", Err: errors.New("reset")}}
	busy := &platform.Error{Kind: platform.KindBusy}
	used := &platform.Error{Kind: platform.KindCodeUsed}
	cases := []struct {
		name      string
		first     error
		wantCalls int
	}{
		{"success", nil, 1},
		{"dial failure", dialErr, 2},
		{"busy", busy, 2},
		{"reset after sending", readErr, 1},
		{"timeout", &platform.Error{Kind: platform.KindUnavailable, Err: context.DeadlineExceeded}, 1},
		{"user error", used, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &platform.Caller{Backoff: time.Millisecond}
			calls := 0
			err := c.Once(context.Background(), func(context.Context) error {
				calls++
				if calls == 1 {
					return tc.first
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Fatalf("calls %d, want %d", calls, tc.wantCalls)
			}
			if tc.wantCalls == 1 && !errors.Is(err, tc.first) {
				t.Fatalf("err %v, want %v", err, tc.first)
			}
		})
	}
	t.Run("no retry past the deadline", func(t *testing.T) {
		c := &platform.Caller{Backoff: time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		calls := 0
		_ = c.Once(ctx, func(context.Context) error { calls++; return busy })
		if calls != 1 {
			t.Fatalf("calls %d", calls)
		}
	})
}

func TestBaseURL(t *testing.T) {
	if u, err := platform.BaseURL("", "https://d"); err != nil || u != "https://d" {
		t.Fatal(u, err)
	}
	if u, err := platform.BaseURL("http://127.0.0.1:9300/", "x"); err != nil || u != "http://127.0.0.1:9300" {
		t.Fatal(u, err)
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:9300", "http://x/?a=b", "http://x/#f", "http://"} {
		if _, err := platform.BaseURL(bad, "x"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
