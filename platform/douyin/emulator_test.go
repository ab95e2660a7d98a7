package douyin_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/douyin"
	"github.com/mplogin/mplogin/secret"
)

const (
	appID     = "tt07e3715e98c9aac0"
	appSecret = "douyin-secret-5b1e"
)

type env struct {
	em  *emulator.Emulator
	c   *douyin.Client
	url string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b, err := os.ReadFile("testdata/app_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := k.(*rsa.PrivateKey)
	em := emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: platform.FamilyDouyin, AppID: appID, Secret: appSecret, RSAPublicKey: &key.PublicKey},
	}})
	srv := httptest.NewServer(em)
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	t.Cleanup(func() { hc.CloseIdleConnections(); srv.Close() })
	c, err := douyin.New(douyin.Config{AppID: appID, Secret: secret.New(appSecret), Endpoint: srv.URL, HTTP: hc, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return &env{em: em, c: c, url: srv.URL}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) login(t *testing.T, user string, anonymous bool) (string, string) {
	t.Helper()
	code, anon, err := e.em.LoginDouyin(appID, user, anonymous)
	if err != nil {
		t.Fatal(err)
	}
	return code, anon
}

// wantErr checks kind and Douyin code, and that none of the values leaks
// into the error.
func wantErr(t *testing.T, err error, kind platform.Kind, code string, values ...string) {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) || pe.Kind != kind || pe.Code != code {
		t.Fatalf("got %v, want %v %q", err, kind, code)
	}
	text := fmt.Sprintf("%v %+v %#v", err, err, err)
	for _, v := range append(values, appSecret) {
		if v != "" && strings.Contains(text, v) {
			t.Fatalf("%q leaks into %s", v, text)
		}
	}
}

func TestExchangeAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	code, anon := e.login(t, "alice", false)
	login, err := e.c.Exchange(ctx(t), platform.ExchangeRequest{Code: code, AnonymousCode: anon})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := e.em.SessionKey("douyin", appID, "alice")
	if login.OpenID != e.em.OpenID("douyin", appID, "alice") || login.AnonymousOpenID != e.em.AnonymousOpenID(appID, "alice") ||
		login.UnionID != e.em.UnionID("douyin", appID, "alice") || login.UnionID == "" || login.SessionKey.Reveal() != key {
		t.Fatalf("login %+v", login)
	}

	_, anon = e.login(t, "bob", true)
	login, err = e.c.Exchange(ctx(t), platform.ExchangeRequest{AnonymousCode: anon})
	if err != nil || login.OpenID != "" || login.UnionID != "" || login.AnonymousOpenID != e.em.AnonymousOpenID(appID, "bob") ||
		login.SessionKey.IsZero() {
		t.Fatalf("anonymous login %+v: %v", login, err)
	}

	// Used, unknown and mixed-up codes are all invalid_code.
	_, err = e.c.Exchange(ctx(t), platform.ExchangeRequest{Code: code})
	wantErr(t, err, platform.KindInvalidCode, "40018", code)
	_, err = e.c.Exchange(ctx(t), platform.ExchangeRequest{AnonymousCode: anon})
	wantErr(t, err, platform.KindInvalidCode, "40019", anon)
	code, anon = e.login(t, "carol", false)
	_, err = e.c.Exchange(ctx(t), platform.ExchangeRequest{Code: anon})
	wantErr(t, err, platform.KindInvalidCode, "40018", anon)

	wrong, _ := douyin.New(douyin.Config{AppID: appID, Secret: secret.New("wrong-secret"), Endpoint: e.url})
	_, err = wrong.Exchange(ctx(t), platform.ExchangeRequest{Code: code})
	wantErr(t, err, platform.KindBadCredentials, "40017", "wrong-secret", code)
	unknown, _ := douyin.New(douyin.Config{AppID: "ttunknown", Secret: secret.New(appSecret), Endpoint: e.url})
	_, err = unknown.Exchange(ctx(t), platform.ExchangeRequest{Code: code})
	wantErr(t, err, platform.KindBadCredentials, "40015", code)

	// None of the refusals spent carol's codes.
	if _, err := e.c.Exchange(ctx(t), platform.ExchangeRequest{Code: code, AnonymousCode: anon}); err != nil {
		t.Fatal(err)
	}
}

// A busy answer is retried once; a second one is returned.
func TestBusyAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	e.em.SetFaults(emulator.Fault{Path: douyin.PathCode2Session, Errcode: -1, Times: 1})
	code, _ := e.login(t, "alice", false)
	if _, err := e.c.Exchange(ctx(t), platform.ExchangeRequest{Code: code}); err != nil {
		t.Fatalf("busy once then fine: %v", err)
	}
	e.em.SetFaults(emulator.Fault{Path: douyin.PathCode2Session, Errcode: -1, Times: 2})
	code, _ = e.login(t, "alice", false)
	before := e.em.Stats()[douyin.PathCode2Session]
	_, err := e.c.Exchange(ctx(t), platform.ExchangeRequest{Code: code})
	wantErr(t, err, platform.KindBusy, "-1", code)
	if n := e.em.Stats()[douyin.PathCode2Session] - before; n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

func TestTokenAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	t1, life, err := e.c.FetchAccessToken(ctx(t))
	if err != nil || life != 7200*time.Second || !e.em.TokenValid("douyin", appID, t1.Reveal()) {
		t.Fatalf("got %v for %v: %v", t1, life, err)
	}
	t2, _, err := e.c.FetchAccessToken(ctx(t))
	if err != nil || t2.Equal(t1) {
		t.Fatalf("second fetch: %v", err)
	}
	wrong, _ := douyin.New(douyin.Config{AppID: appID, Secret: secret.New("wrong-secret"), Endpoint: e.url})
	_, _, err = wrong.FetchAccessToken(ctx(t))
	wantErr(t, err, platform.KindBadCredentials, "40017", "wrong-secret")
}

// fetching is a token source that fetches from Douyin and caches until
// told the token was refused.
type fetching struct {
	c       *douyin.Client
	mu      sync.Mutex
	tok     secret.String
	fetches int
}

func (f *fetching) Token(ctx context.Context) (secret.String, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok.IsZero() {
		tok, _, err := f.c.FetchAccessToken(ctx)
		if err != nil {
			return secret.String{}, err
		}
		f.tok = tok
		f.fetches++
	}
	return f.tok, nil
}

func (f *fetching) InvalidateToken(_ context.Context, tok secret.String) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok.Equal(tok) {
		f.tok = secret.String{}
	}
}

func TestPhoneNumberAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	src := &fetching{c: e.c}
	doer := accesstoken.FromSource(src)
	phoneOf := func(code string) (*douyin.Phone, error) {
		var p *douyin.Phone
		err := doer.Do(ctx(t), func(ctx context.Context, tok secret.String) (err error) {
			p, err = e.c.PhoneNumber(ctx, tok, code)
			return err
		})
		return p, err
	}

	code, err := e.em.DouyinPhoneCode(appID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	p, err := phoneOf(code)
	if err != nil || p.PurePhoneNumber != e.em.PhoneNumber("alice") || p.PhoneNumber != p.PurePhoneNumber ||
		p.CountryCode != "86" || p.WatermarkAppID != appID {
		t.Fatalf("%v: %v", p, err)
	}
	_, err = phoneOf(code)
	wantErr(t, err, platform.KindInvalidCode, "28005187", code, e.em.PhoneNumber("alice"))

	// A token Douyin no longer accepts is fetched again, and the code,
	// refused with the token, still works.
	e.em.ExpireTokens("douyin", appID)
	code, _ = e.em.DouyinPhoneCode(appID, "bob")
	if p, err = phoneOf(code); err != nil || p.PurePhoneNumber != e.em.PhoneNumber("bob") || src.fetches != 2 {
		t.Fatalf("%v after %d fetches: %v", p, src.fetches, err)
	}

	// Without the private key nothing is sent, and the code stays good.
	bare, _ := douyin.New(douyin.Config{AppID: appID, Secret: secret.New(appSecret), Endpoint: e.url})
	code, _ = e.em.DouyinPhoneCode(appID, "carol")
	tok, _ := src.Token(ctx(t))
	if _, err := bare.PhoneNumber(ctx(t), tok, code); !errors.Is(err, douyin.ErrNoPrivateKey) {
		t.Fatalf("got %v", err)
	}
	if _, err := phoneOf(code); err != nil {
		t.Fatal(err)
	}
}
