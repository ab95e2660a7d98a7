package accesstoken_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
)

func mustToken(t *testing.T, m *accesstoken.Manager, key string) secret.String {
	t.Helper()
	tok, err := m.Token(t.Context(), key)
	if err != nil {
		t.Fatalf("Token(%s): %v", key, err)
	}
	return tok
}

// crowd has n callers ask for the token at once, while the fetch is held
// at the gate until the first one reached it.
func crowd(t *testing.T, f *fixture, m *accesstoken.Manager, n int) []secret.String {
	t.Helper()
	arrived, release := f.rec.hold()
	got := make([]secret.String, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = m.Token(t.Context(), wxKey) })
	}
	<-arrived
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	return got
}

// Many callers needing a token cause one fetch, and all get it.
func TestConcurrentCallersShareOneFetch(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)

	got := crowd(t, f, m, 200) // no token yet
	f.wantFetches(1)
	for _, tok := range got {
		if !tok.Equal(got[0]) || !f.em.TokenValid("wechat", wxApp, tok.Reveal()) {
			t.Fatal("callers got different or invalid tokens")
		}
	}

	f.clock.Advance(2 * time.Hour) // expired, on the platform too
	again := crowd(t, f, m, 200)
	f.wantFetches(2)
	if again[0].Equal(got[0]) || !f.em.TokenValid("wechat", wxApp, again[0].Reveal()) {
		t.Fatal("after expiry: want a new valid token")
	}
	for _, tok := range again {
		if !tok.Equal(again[0]) {
			t.Fatal("callers got different tokens")
		}
	}
}

// The first caller giving up does not cancel the fetch the others wait for.
func TestCanceledCallerDoesNotCancelFetch(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)
	arrived, release := f.rec.hold()

	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := m.Token(ctx, wxKey)
		first <- err
	}()
	<-arrived // the fetch is at the platform
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller got %v, want context.Canceled", err)
	}

	second := make(chan secret.String, 1)
	go func() {
		tok, err := m.Token(t.Context(), wxKey)
		if err != nil {
			t.Error(err)
		}
		second <- tok
	}()
	release()
	tok := <-second
	if !f.em.TokenValid("wechat", wxApp, tok.Reveal()) {
		t.Fatal("the second caller got no valid token")
	}
	// The first fetch finished and served the second caller: one fetch.
	f.wantFetches(1)
	if plain, _, err := f.stored(wxKey); err != nil || plain != tok.Reveal() {
		t.Fatalf("the detached fetch did not reach the store: %v", err)
	}
}

// Refresh at 80% of expires_in, not before.
func TestRefreshAt80Percent(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)
	t0 := f.clock.Now()
	tok := mustToken(t, m, wxKey)
	f.wantFetches(1)

	f.clock.Advance(5688 * time.Second) // 79% of 7200 s
	if again := mustToken(t, m, wxKey); !again.Equal(tok) {
		t.Fatal("token changed before 80%")
	}
	f.wantFetches(1)

	f.clock.Advance(72 * time.Second) // 80%
	again := mustToken(t, m, wxKey)
	f.wantFetches(2)
	// Normal mode: the platform hands out the same token, 1440 s left.
	if !again.Equal(tok) {
		t.Fatal("stable_token normal mode should have returned the same token")
	}
	_, st, err := f.stored(wxKey)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(5760 * time.Second)
	if !st.ExpiresAt.Equal(now.Add(1440*time.Second)) || !st.RefreshAt.Equal(now.Add(1152*time.Second)) {
		t.Fatalf("stored times %v / %v", st.ExpiresAt, st.RefreshAt)
	}
	mustToken(t, m, wxKey)
	f.wantFetches(2)
}

// A still-valid token is served when its early refresh fails; an expired
// one is not.
func TestFailedRefreshServesValidToken(t *testing.T) {
	f := newFixture(t)
	m := f.manager(nil)
	tok := mustToken(t, m, wxKey)

	f.clock.Advance(6000 * time.Second) // past 80%, before expiry
	f.em.SetFaults(emulator.Fault{Path: wechat.PathStableToken, Status: 502})
	if got := mustToken(t, m, wxKey); !got.Equal(tok) {
		t.Fatal("the valid token was not served after a failed refresh")
	}
	f.wantFetches(2)
	// No new attempt for a while: an outage is not met with a fetch per call.
	mustToken(t, m, wxKey)
	f.wantFetches(2)
	f.clock.Advance(10 * time.Second)
	mustToken(t, m, wxKey)
	f.wantFetches(3)

	f.clock.Advance(7200 * time.Second) // expired
	_, err := m.Token(t.Context(), wxKey)
	var pe *platform.Error
	if !errors.As(err, &pe) || pe.Kind != platform.KindUnavailable {
		t.Fatalf("expired token and a failing platform: got %v, want a *platform.Error of KindUnavailable", err)
	}
	f.em.ClearFaults()
	if got := mustToken(t, m, wxKey); got.Equal(tok) || !f.em.TokenValid("wechat", wxApp, got.Reveal()) {
		t.Fatal("no fresh token once the platform is back")
	}
}

// A token in the store serves a second instance without a fetch; it
// is stored sealed.
func TestStoreSharedByInstances(t *testing.T) {
	f := newFixture(t)
	tok := mustToken(t, f.manager(f.store), wxKey)
	f.wantFetches(1)

	second := f.manager(f.store)
	if got := mustToken(t, second, wxKey); !got.Equal(tok) {
		t.Fatal("the second instance got another token")
	}
	f.wantFetches(1)

	_, st, err := f.stored(wxKey)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(st.Sealed), tok.Reveal()) {
		t.Fatal("the store holds the token in clear")
	}
	// Sealed to its key: the row cannot be moved to another app.
	if _, err := f.keys.Open(st.Sealed, []byte("access_token\x00"+bdKey)); err == nil {
		t.Fatal("the sealed token opens under another key")
	}

	// An instance whose keyring cannot open it fetches instead.
	other, _ := keyringOf(t, 9)
	third := f.manager(f.store, func(c *accesstoken.Config) { c.Keys = other })
	mustToken(t, third, wxKey)
	f.wantFetches(2)
}

func TestInvalidateOnlyCurrent(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)
	tok := mustToken(t, m, wxKey)

	// A report about another token changes nothing.
	if err := m.Invalidate(t.Context(), wxKey, secret.New("some-older-token")); err != nil {
		t.Fatal(err)
	}
	if got := mustToken(t, m, wxKey); !got.Equal(tok) {
		t.Fatal("a stale report dropped the current token")
	}
	if _, _, err := f.stored(wxKey); err != nil {
		t.Fatalf("a stale report dropped the stored token: %v", err)
	}
	f.wantFetches(1)

	// The current one is dropped from memory and store.
	if err := m.Invalidate(t.Context(), wxKey, tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.stored(wxKey); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stored token after Invalidate: %v, want ErrNotFound", err)
	}
	mustToken(t, m, wxKey)
	f.wantFetches(2)
}

// A late invalidation by one instance does not drop the newer token
// another instance stored meanwhile (compare-and-delete).
func TestLateInvalidateKeepsNewerToken(t *testing.T) {
	f := newFixture(t)
	a, b := f.manager(f.store), f.manager(f.store)
	t1 := mustToken(t, a, wxKey)
	if got := mustToken(t, b, wxKey); !got.Equal(t1) {
		t.Fatal("b did not share a's token")
	}
	f.em.ExpireTokens("wechat", wxApp)

	// b learns first, and fetches t2.
	if err := b.Invalidate(t.Context(), wxKey, t1); err != nil {
		t.Fatal(err)
	}
	t2 := mustToken(t, b, wxKey)
	if t2.Equal(t1) {
		t.Fatal("b got the expired token again")
	}
	// a's report about t1 comes late.
	if err := a.Invalidate(t.Context(), wxKey, t1); err != nil {
		t.Fatal(err)
	}
	if plain, _, err := f.stored(wxKey); err != nil || plain != t2.Reveal() {
		t.Fatalf("the store lost the newer token: %v", err)
	}
	if got := mustToken(t, a, wxKey); !got.Equal(t2) {
		t.Fatal("a did not take the newer token from the store")
	}
	f.wantFetches(2)
}

// businessCall is a call of a business API that checks the token the way
// the platform would.
func businessCall(f *fixture, calls *int) func(context.Context, secret.String) error {
	return func(_ context.Context, tok secret.String) error {
		*calls++
		if !f.em.TokenValid("wechat", wxApp, tok.Reveal()) {
			return &platform.Error{Host: "wechat", Endpoint: "/wxa/business/getuserphonenumber",
				Kind: platform.KindTokenInvalid, Code: "40001"}
		}
		return nil
	}
}

// A rejected token is invalidated, one new one fetched, the call
// retried once.
func TestDoRefetchesOnceOnInvalidToken(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)
	old := mustToken(t, m, wxKey)
	f.em.ExpireTokens("wechat", wxApp)

	calls := 0
	if err := m.Do(t.Context(), wxKey, businessCall(f, &calls)); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if calls != 2 {
		t.Fatalf("%d calls, want 2", calls)
	}
	f.wantFetches(2)
	if cur := mustToken(t, m, wxKey); cur.Equal(old) || !f.em.TokenValid("wechat", wxApp, cur.Reveal()) {
		t.Fatal("the manager kept the rejected token")
	}

	// A call the platform keeps refusing is retried once, not more.
	calls = 0
	refuse := func(context.Context, secret.String) error {
		calls++
		return &platform.Error{Kind: platform.KindTokenInvalid, Code: "42001"}
	}
	if err := m.Do(t.Context(), wxKey, refuse); platform.KindOf(err) != platform.KindTokenInvalid {
		t.Fatalf("Do = %v, want the call's KindTokenInvalid", err)
	}
	if calls != 2 {
		t.Fatalf("%d calls, want 2", calls)
	}
	f.wantFetches(3)

	// Other failures are not retried and fetch nothing.
	calls = 0
	busy := func(context.Context, secret.String) error {
		calls++
		return &platform.Error{Kind: platform.KindBusy}
	}
	if err := m.Do(t.Context(), wxKey, busy); platform.KindOf(err) != platform.KindBusy || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want busy after 1", err, calls)
	}
	f.wantFetches(3)
}

// The manager is a platform.TokenSource for one key.
func TestSource(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)
	src := m.Source(wxKey)
	var ts platform.TokenSource = src
	tok, err := ts.Token(t.Context())
	if err != nil || !f.em.TokenValid("wechat", wxApp, tok.Reveal()) {
		t.Fatalf("Token: %v", err)
	}
	f.em.ExpireTokens("wechat", wxApp)
	src.InvalidateToken(t.Context(), tok) // what a client does on KindTokenInvalid
	if again, _ := ts.Token(t.Context()); again.Equal(tok) || !f.em.TokenValid("wechat", wxApp, again.Reveal()) {
		t.Fatal("no new token after InvalidateToken")
	}
	calls := 0
	f.em.ExpireTokens("wechat", wxApp)
	if err := src.Do(t.Context(), businessCall(f, &calls)); err != nil || calls != 2 {
		t.Fatalf("Do = %v after %d calls", err, calls)
	}

	if _, err := m.Source("wechat:unregistered").Token(t.Context()); !errors.Is(err, accesstoken.ErrUnknownKey) {
		t.Fatalf("unregistered key: %v", err)
	}
}

func TestBaiduToken(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)
	tok := mustToken(t, m, bdKey)
	if !strings.HasPrefix(tok.Reveal(), "24.") || !f.em.TokenValid("baidu", bdApp, tok.Reveal()) {
		t.Fatal("no valid Baidu token")
	}
	_, st, err := f.stored(bdKey)
	if err != nil || !st.RefreshAt.Equal(f.clock.Now().Add(24*24*time.Hour)) {
		t.Fatalf("stored %v, %v; want a refresh after 24 of its 30 days", st.RefreshAt, err)
	}
	f.clock.Advance(24*24*time.Hour - time.Second)
	if again := mustToken(t, m, bdKey); !again.Equal(tok) {
		t.Fatal("refreshed before 80%")
	}
	f.clock.Advance(time.Second)
	if again := mustToken(t, m, bdKey); again.Equal(tok) {
		t.Fatal("not refreshed at 80%")
	}
}

func TestFetchErrors(t *testing.T) {
	f := newFixture(t)
	wrong, _ := wechat.New(wechat.Config{AppID: wxApp, Secret: secret.New("wrong"), Endpoint: f.url, HTTP: f.hc})
	m, _ := accesstoken.New(accesstoken.Config{Now: f.clock.Now, FetchTimeout: 300 * time.Millisecond})
	_ = m.Register("bad-secret", wrong)
	_ = m.Register("plain-error", accesstoken.FetcherFunc(func(context.Context) (secret.String, time.Duration, error) {
		return secret.String{}, 0, errors.New("no token today")
	}))
	_ = m.Register("no-token", accesstoken.FetcherFunc(func(context.Context) (secret.String, time.Duration, error) {
		return secret.String{}, time.Hour, nil
	}))
	_ = m.Register("slow", f.wx)
	f.em.SetFaults(emulator.Fault{Path: wechat.PathStableToken, LatencyMS: 5000})

	for _, c := range []struct {
		key  string
		want platform.Kind
	}{
		{"slow", platform.KindUnavailable}, // the fetch's own timeout
		{"bad-secret", platform.KindBadCredentials},
		{"plain-error", platform.KindUnavailable},
		{"no-token", platform.KindUnavailable},
	} {
		key, want := c.key, c.want
		if key == "bad-secret" {
			f.em.ClearFaults()
		}
		start := time.Now()
		_, err := m.Token(t.Context(), key)
		if pe, ok := errors.AsType[*platform.Error](err); !ok || pe.Kind != want {
			t.Errorf("%s: got %v, want a *platform.Error of %v", key, err, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", key, d)
		}
	}

	if err := m.Register("slow", f.wx); err == nil {
		t.Error("a key was registered twice")
	}
	if _, err := accesstoken.New(accesstoken.Config{Store: f.store}); err == nil {
		t.Error("a store without a keyring was accepted")
	}
}

// Refreshes are logged with the key and expires_in; no token ever is.
func TestLogs(t *testing.T) {
	f := newFixture(t)
	m := f.manager(f.store)
	mustToken(t, m, wxKey)
	logs := f.logs.String()
	for _, want := range []string{`"msg":"platform access token refreshed"`, `"key":"` + wxKey + `"`, `"expires_in":7200`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	// checkAfter scans the logs for the tokens themselves.
}

// Across instances: three instances sharing a store, 100 callers each,
// all needing a token at once: the lease lets one instance fetch, and the
// other two take its token from the store.
func TestLeaseOneFetchAcrossInstances(t *testing.T) {
	f := newFixture(t)
	ms := []*accesstoken.Manager{
		f.manager(f.store, func(c *accesstoken.Config) { c.LeaseWait = time.Millisecond }),
		f.manager(f.store, func(c *accesstoken.Config) { c.LeaseWait = time.Millisecond }),
		f.manager(f.store, func(c *accesstoken.Config) { c.LeaseWait = time.Millisecond }),
	}
	arrived, release := f.rec.hold()
	var wg sync.WaitGroup
	toks := make([]secret.String, 300)
	errs := make([]error, 300)
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = ms[i%3].Token(t.Context(), wxKey) })
	}
	<-arrived // one instance is at the platform; without the lease the others would follow
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if !toks[i].Equal(toks[0]) {
			t.Fatal("callers got different tokens")
		}
	}
	f.wantFetches(1)
	if !f.em.TokenValid("wechat", wxApp, toks[0].Reveal()) {
		t.Fatal("the shared token is not valid")
	}
}

// A lease whose holder died ends, and another instance fetches.
func TestLeaseOfDeadHolderEnds(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	if ok, err := f.store.AcquireLease(t.Context(), "refresh:"+wxKey, "dead", now, now.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("AcquireLease: %v %v", ok, err)
	}
	m := f.manager(f.store, func(c *accesstoken.Config) { c.LeaseWait = time.Millisecond })
	done := make(chan error, 1)
	go func() {
		_, err := m.Token(t.Context(), wxKey)
		done <- err
	}()
	f.clock.Advance(2 * time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.wantFetches(1)
}

// slowLease delays AcquireLease, so that another instance can refresh and
// release between this instance's look in the store and its lease.
type slowLease struct {
	store.Store
	arrived chan struct{} // told when a lease is asked for
	before  chan struct{} // closed to let the lease through
}

func (s slowLease) AcquireLease(ctx context.Context, key, holder string, now, until time.Time) (bool, error) {
	s.arrived <- struct{}{}
	<-s.before
	return s.Store.AcquireLease(ctx, key, holder, now, until)
}

// An instance that wins the lease just after another instance refreshed
// takes that token instead of fetching a second one.
func TestLeaseWonAfterOtherRefreshed(t *testing.T) {
	f := newFixture(t)
	gate, arrived := make(chan struct{}), make(chan struct{}, 1)
	slow := f.manager(slowLease{Store: f.store, arrived: arrived, before: gate})
	done := make(chan secret.String, 1)
	go func() {
		tok, err := slow.Token(t.Context(), wxKey)
		if err != nil {
			t.Error(err)
		}
		done <- tok
	}()
	<-arrived // the slow instance found no token in the store
	// The other instance refreshes, stores and releases meanwhile.
	tok := mustToken(t, f.manager(f.store), wxKey)
	close(gate)
	if got := <-done; !got.Equal(tok) {
		t.Fatal("the slow instance got another token")
	}
	f.wantFetches(1)
}

// A caller that joins a fetch begun before it arrived, which then fails,
// gets one fetch of its own; the caller that began the failed fetch gets
// its error, and nobody gets a third.
func TestLateCallerRetriesFailedFetchOnce(t *testing.T) {
	for _, c := range []struct {
		name       string
		secondOK   bool
		wantLateOK bool
	}{
		{"second fetch succeeds", true, true},
		{"second fetch fails too", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			calls := make(chan int)
			answer := make(chan bool)
			n := 0
			m, err := accesstoken.New(accesstoken.Config{Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			_ = m.Register("k", accesstoken.FetcherFunc(func(context.Context) (secret.String, time.Duration, error) {
				n++
				calls <- n
				if <-answer {
					return secret.New("tok-" + strconv.Itoa(n)), time.Hour, nil
				}
				return secret.String{}, 0, errors.New("platform down")
			}))
			waiting := make(chan string, 4)
			accesstoken.OnWait(m, func(key string) { waiting <- key })

			type result struct {
				tok secret.String
				err error
			}
			first, late := make(chan result, 1), make(chan result, 1)
			go func() {
				tok, err := m.Token(t.Context(), "k")
				first <- result{tok, err}
			}()
			if got := <-calls; got != 1 {
				t.Fatalf("fetch %d, want 1", got)
			}
			<-waiting // the first caller waits on its fetch
			go func() {
				tok, err := m.Token(t.Context(), "k")
				late <- result{tok, err}
			}()
			<-waiting // the late caller has joined the first fetch
			answer <- false

			if r := <-first; r.err == nil {
				t.Errorf("first caller: got a token, want the failed fetch's error")
			}
			select {
			case got := <-calls:
				if got != 2 {
					t.Fatalf("fetch %d, want 2", got)
				}
			case r := <-late:
				t.Fatalf("late caller answered (%v) with no fetch of its own", r.err)
			}
			answer <- c.secondOK
			r := <-late
			if c.wantLateOK && (r.err != nil || r.tok.Reveal() != "tok-2") {
				t.Errorf("late caller: %v, want the second fetch's token", r.err)
			}
			if !c.wantLateOK && r.err == nil {
				t.Errorf("late caller: got a token, want the second fetch's error")
			}
			select {
			case got := <-calls:
				t.Errorf("fetch %d: want no third", got)
			default:
			}
		})
	}
}
