package platform_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/platform"
)

func TestURLTokenSource(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		<-release
		fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":"100"}`, n)
	}))
	defer srv.Close()
	clock := testutil.NewClock(time.Unix(1000, 0))
	src := &platform.URLTokenSource{URL: srv.URL, Now: clock.Now}
	var wg sync.WaitGroup
	got := make([]string, 50)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = tok.Reveal()
		}()
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fetches for 50 concurrent callers", calls.Load())
	}
	for _, g := range got {
		if g != "tok-1" {
			t.Fatalf("got %q", g)
		}
	}
	clock.Advance(79 * time.Second)
	if tok, _ := src.Token(context.Background()); tok.Reveal() != "tok-1" || calls.Load() != 1 {
		t.Fatal("refetched before 80% of the lifetime")
	}
	clock.Advance(time.Second)
	if tok, _ := src.Token(context.Background()); tok.Reveal() != "tok-2" {
		t.Fatalf("not renewed at 80%%: %q", tok.Reveal())
	}
	stale, _ := platform.StaticToken{}.Token(context.Background())
	src.InvalidateToken(context.Background(), stale) // not the current one: ignored
	if tok, _ := src.Token(context.Background()); tok.Reveal() != "tok-2" {
		t.Fatal("a stale report dropped the current token")
	}
	cur, _ := src.Token(context.Background())
	src.InvalidateToken(context.Background(), cur)
	if tok, _ := src.Token(context.Background()); tok.Reveal() != "tok-3" {
		t.Fatalf("not refetched after invalidation: %q", tok.Reveal())
	}
}
