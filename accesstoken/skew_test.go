package accesstoken_test

import (
	"context"
	"testing"
	"time"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
)

// lag is how far behind the fixture's clock (the platform's) a skewed
// instance runs, well within mplogin.MaxClockSkew.
const lag = 10 * time.Second

func lagging(f *fixture) func(*accesstoken.Config) {
	return func(c *accesstoken.Config) { c.Now = func() time.Time { return f.clock.Now().Add(-lag) } }
}

// An instance whose clock lags does not take a token another instance
// stored for valid after it has expired: the token's end is judged with the
// skew allowed between instances, even when the platform cannot give a new
// one.
func TestLaggingInstanceServesNoExpiredToken(t *testing.T) {
	f := newFixture(t)
	tok := mustToken(t, f.manager(f.store), wxKey)
	f.em.SetFaults(emulator.Fault{Path: wechat.PathStableToken, Status: 502})
	f.clock.Advance(7200*time.Second + lag/2) // expired on the platform; not yet by the lagging clock

	got, err := f.manager(f.store, lagging(f)).Token(t.Context(), wxKey)
	if err == nil && !f.em.TokenValid("wechat", wxApp, got.Reveal()) {
		t.Fatalf("served a token the platform no longer accepts (the stored one: %v)", got.Equal(tok))
	}
}

// leaseWatch reports the outcome of every AcquireLease of one holder.
type leaseWatch struct {
	store.Store
	holder string
	got    chan bool
}

func (w leaseWatch) AcquireLease(ctx context.Context, key, holder string, now, until time.Time) (bool, error) {
	ok, err := w.Store.AcquireLease(ctx, key, holder, now, until)
	if holder == w.holder && err == nil {
		w.got <- ok
	}
	return ok, err
}

// The refresh lease of an instance whose clock lags lasts its whole fetch
// for an instance whose clock runs ahead: the latter waits for the token
// instead of fetching one of its own.
func TestLeaseLastsAcrossSkew(t *testing.T) {
	f := newFixture(t)
	arrived, release := f.rec.hold()
	holder := f.manager(f.store, lagging(f))
	held := make(chan secret.String, 1)
	go func() {
		tok, err := holder.Token(t.Context(), wxKey)
		if err != nil {
			t.Error(err)
		}
		held <- tok
	}()
	<-arrived // the lagging instance holds the lease and is at the platform

	// Within the holder's fetch timeout by its own clock, past it by the
	// other's.
	f.clock.Advance(accesstoken.DefaultFetchTimeout - lag + time.Second)
	watch := leaseWatch{Store: f.store, holder: "ahead", got: make(chan bool, 1000)}
	ahead := f.manager(watch, func(c *accesstoken.Config) { c.Holder, c.LeaseWait = "ahead", time.Millisecond })
	waited := make(chan secret.String, 1)
	go func() {
		tok, err := ahead.Token(t.Context(), wxKey)
		if err != nil {
			t.Error(err)
		}
		waited <- tok
	}()
	if <-watch.got {
		t.Error("the instance ahead took the lease while its holder was still fetching")
	}
	release()
	if tok, other := <-held, <-waited; !tok.Equal(other) {
		t.Error("the instances got different tokens")
	}
	f.wantFetches(1)
}
