package hostcall_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/platform"
)

func TestScrub(t *testing.T) {
	got := hostcall.Scrub("invalid code abc123, rid: x", "abc123", "")
	if strings.Contains(got, "abc123") || !strings.Contains(got, "rid: x") {
		t.Fatalf("got %q", got)
	}
	if long := hostcall.Scrub(strings.Repeat("x", 2000)); len(long) > 520 {
		t.Fatalf("not capped: %d", len(long))
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
			c := &hostcall.Caller{Backoff: time.Millisecond}
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
		c := &hostcall.Caller{Backoff: time.Second}
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
	if u, err := hostcall.BaseURL("", "https://d"); err != nil || u != "https://d" {
		t.Fatal(u, err)
	}
	if u, err := hostcall.BaseURL("http://127.0.0.1:9300/", "x"); err != nil || u != "http://127.0.0.1:9300" {
		t.Fatal(u, err)
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:9300", "http://x/?a=b", "http://x/#f", "http://"} {
		if _, err := hostcall.BaseURL(bad, "x"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
