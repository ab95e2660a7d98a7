package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
)

// alipayPlatform answers as Alipay's gateway: a code "alice.N" is the user
// with open_id "open-alice" and user_id "2088-alice"; no session key.
type alipayPlatform struct{}

func (alipayPlatform) Flavor() platform.Flavor { return platform.FlavorAlipay }

func (alipayPlatform) Exchange(_ context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	user, _, _ := strings.Cut(req.Code, ".")
	return &platform.Login{OpenID: "open-" + user, UnionID: "2088-" + user}, nil
}

// alipayPhones opens an answer whose response is "ok:<mobile>".
type alipayPhones struct{}

func (alipayPhones) OpenPhone(p session.AlipayPhone) (string, error) {
	if m, ok := strings.CutPrefix(p.Response, "ok:"); ok && p.Sign == "signed" {
		return m, nil
	}
	return "", errors.New("does not verify")
}

func alipayApps(f *fixture) []session.App {
	return append(apiApps(f), session.App{Name: "ali", Family: "alipay", AppID: "2021000000000001",
		Client: alipayPlatform{}, CodeTTL: 5 * time.Minute, AlipayPhones: alipayPhones{}})
}

func TestAlipayPhone(t *testing.T) {
	f := newFixture(t, withApps(alipayApps), linking())
	ctx := context.Background()
	wx := f.login(t, "wx", "alice", wxKey1)
	if _, err := f.wechatPhone(t, wx, "13800138000"); err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.Login(ctx, "ali", "alice.1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.User.OpenID != "open-alice" || tok.User.UnionID != "2088-alice" {
		t.Fatalf("Alipay login: %+v", tok.User)
	}
	access := tok.AccessToken.Reveal()
	good := &session.AlipayPhone{Response: "ok:13800138000", Sign: "signed", SignType: "RSA2", EncryptType: "AES", Charset: "UTF-8"}

	// An Alipay answer names no user: its number is recorded, but links nobody.
	r, err := f.svc.Phone(ctx, access, session.PhoneInput{Alipay: good})
	if err != nil || r.Linked || r.UserID != tok.User.ID || r.Number.PurePhoneNumber != "13800138000" || r.Number.CountryCode != "86" {
		t.Fatalf("Alipay phone = %+v, %v", r, err)
	}
	if _, source, ok, err := f.svc.StoredPhone(ctx, tok.User.ID); !ok || err != nil || source != store.PhoneFromUserData {
		t.Fatalf("stored: %v %q %v", ok, source, err)
	}

	for _, tt := range []struct {
		name string
		app  string
		in   session.PhoneInput
	}{
		{"a code on Alipay", "ali", session.PhoneInput{Code: "pc"}},
		{"a session-key payload on Alipay", "ali", session.PhoneInput{EncryptedData: "x", IV: "y"}},
		{"an Alipay answer and a code", "ali", session.PhoneInput{Code: "pc", Alipay: good}},
		{"an Alipay answer without a sign", "ali", session.PhoneInput{Alipay: &session.AlipayPhone{Response: "ok:1"}}},
		{"an Alipay answer on WeChat", "wx", session.PhoneInput{Alipay: good}},
	} {
		at := access
		if tt.app == "wx" {
			at = wx.AccessToken.Reveal()
		}
		if _, err := f.svc.Phone(ctx, at, tt.in); code(t, err) != mplogin.CodeInvalidRequest {
			t.Errorf("%s: %v, want invalid_request", tt.name, err)
		}
	}
	if _, err := f.svc.Decrypt(ctx, access, session.DecryptInput{EncryptedData: "x", IV: "y"}); code(t, err) != mplogin.CodeInvalidRequest {
		t.Errorf("decrypt on an Alipay session: %v, want invalid_request", err)
	}

	// Failures are decrypt_failed and count against the session: after
	// MaxDecryptFailures, a good answer opens nothing either.
	bad := &session.AlipayPhone{Response: "ok:13800138000", Sign: "forged"}
	for i := range session.MaxDecryptFailures {
		if _, err := f.svc.Phone(ctx, access, session.PhoneInput{Alipay: bad}); err != session.ErrDecryptFailed {
			t.Fatalf("forged answer %d: %v, want decrypt_failed", i, err)
		}
	}
	if _, err := f.svc.Phone(ctx, access, session.PhoneInput{Alipay: good}); err != session.ErrDecryptFailed {
		t.Fatalf("a good answer past the cap: %v, want decrypt_failed", err)
	}
	// A new login is a new session, with a count of its own.
	again, err := f.svc.Login(ctx, "ali", "alice.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Phone(ctx, again.AccessToken.Reveal(), session.PhoneInput{Alipay: good}); err != nil {
		t.Fatalf("a good answer on a new session: %v", err)
	}
}

// TestAlipayIdentityModes: an app switching from user_id to open_id mode,
// through a phase whose answers carry both, keeps its users: the user_id
// is the unionid that joins them.
func TestAlipayIdentityModes(t *testing.T) {
	modes := &alipayModes{}
	f := newFixture(t, withApps(func(f *fixture) []session.App {
		return []session.App{{Name: "ali", Family: "alipay", AppID: "2021000000000001", Client: modes, CodeTTL: 5 * time.Minute}}
	}))
	ctx := context.Background()
	var ids []string
	for i, mode := range []string{"user_id", "both", "open_id"} {
		modes.mode = mode
		tok, err := f.svc.Login(ctx, "ali", "bob."+mode)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && !tok.User.Created || i > 0 && tok.User.Created {
			t.Fatalf("%s mode: created %v", mode, tok.User.Created)
		}
		ids = append(ids, tok.User.ID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("users by mode (user_id, both, open_id) = %v; want one user", ids)
	}
}

// alipayModes answers in the identity mode set last.
type alipayModes struct{ mode string }

func (*alipayModes) Flavor() platform.Flavor { return platform.FlavorAlipay }

func (m *alipayModes) Exchange(_ context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	user, _, _ := strings.Cut(req.Code, ".")
	switch m.mode {
	case "user_id":
		return &platform.Login{OpenID: "2088-" + user, UnionID: "2088-" + user}, nil
	case "both":
		return &platform.Login{OpenID: "open-" + user, UnionID: "2088-" + user}, nil
	}
	return &platform.Login{OpenID: "open-" + user}, nil
}
