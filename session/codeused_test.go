package session_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store/memory"
)

// heldClient passes exchanges to the platform, and holds the answer of
// each until release is closed, having closed answered.
type heldClient struct {
	platform.Client
	answered, release chan struct{}
}

func (c *heldClient) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	l, err := c.Client.Exchange(ctx, req)
	close(c.answered)
	<-c.release
	return l, err
}

// Two instances sharing one store get the same code at once (a client
// retrying a slow login through a load balancer). The platform gives the
// identity to the first and "code been used" to the second; the second
// waits for the first to record the code and answers as a replay: both
// log in, as the same user. The first instance's answer is held until the
// second has heard "code used" and looked at the store once, so the order
// is the one that failed, every time.
func TestSameCodeOnTwoInstances(t *testing.T) {
	const (
		appID = "wx0123456789abcdef"
		key   = "AAECAwQFBgcICQoLDA0ODw=="
	)
	em := emulator.New(emulator.Config{Apps: []emulator.App{{Family: "wechat", AppID: appID, Secret: "s3cret"}}})
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	t.Cleanup(hc.CloseIdleConnections)
	wx, err := wechat.New(wechat.Config{AppID: appID, Secret: secret.New("s3cret"), Endpoint: srv.URL, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(nil, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	held := &heldClient{Client: wx, answered: make(chan struct{}), release: make(chan struct{})}
	instance := func(c platform.Client) *session.Service {
		svc, err := session.New(session.Config{Store: st, Keys: keys, Policy: session.DefaultPolicy,
			Apps: []session.App{{Name: "wx", Family: "wechat", AppID: appID, Client: c, CodeTTL: 5 * time.Minute}}})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b := instance(held), instance(wx)

	var (
		aDone = make(chan struct{})
		slept []time.Duration
		once  sync.Once
	)
	// B's waits: the first lets A go on and returns once A has logged in
	// (its code recorded); none takes real time.
	session.SetSleep(b, func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		once.Do(func() { close(held.release) })
		<-aDone
		return nil
	})
	code, err := em.Login("wechat", appID, "ann", key)
	if err != nil {
		t.Fatal(err)
	}

	var (
		aTok *session.Tokens
		aErr error
	)
	go func() {
		defer close(aDone)
		aTok, aErr = a.Login(context.Background(), "wx", code)
	}()
	<-held.answered // the platform has spent the code on A
	bTok, bErr := b.Login(context.Background(), "wx", code)
	select {
	case <-held.release:
	default:
		close(held.release) // B did not wait: let A finish
	}
	<-aDone
	if aErr != nil {
		t.Fatalf("instance A: %v", aErr)
	}
	if bErr != nil {
		t.Fatalf("instance B: %v (code %s)", bErr, mplogin.ErrorCode(bErr))
	}
	if aTok.User.ID != bTok.User.ID || aTok.User.OpenID != bTok.User.OpenID {
		t.Fatalf("A logged in %+v, B %+v: want the same user", aTok.User, bTok.User)
	}
	if aTok.AccessToken.Reveal() == bTok.AccessToken.Reveal() {
		t.Fatal("A and B got the same session")
	}
	var total time.Duration
	for _, d := range slept {
		total += d
	}
	if len(slept) == 0 || total > 2*time.Second {
		t.Fatalf("B waited %v (%v), want some wait, at most 2s", slept, total)
	}
}
