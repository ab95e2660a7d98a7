package session_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/userdata"
)

// fakeAPI makes an app's platform calls beyond login, every capability.
// Phone codes "pc-<name>" resolve to the number in phones; a code in errs
// fails with that kind. A code in owners belongs to that openid and, as on WeChat, is refused
// (40003) when presented with another.
type fakeAPI struct {
	mu        sync.Mutex
	phones    map[string]string
	owners    map[string]string
	errs      map[string]platform.Kind
	validKey  string // CheckSessionKey answers true for this key only
	newKey    string // what ResetSessionKey hands out
	unionIDs  map[string]string
	unionErr  error
	calls     map[string]int
	seenKeys  []string
	seenOpens []string
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{phones: map[string]string{}, owners: map[string]string{}, errs: map[string]platform.Kind{}, unionIDs: map[string]string{}, calls: map[string]int{}}
}

func (a *fakeAPI) count(name string) int { a.mu.Lock(); defer a.mu.Unlock(); return a.calls[name] }

func (a *fakeAPI) record(name, openID string, key secret.String) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[name]++
	if !key.IsZero() {
		a.seenKeys = append(a.seenKeys, key.Reveal())
	}
	a.seenOpens = append(a.seenOpens, openID)
}

func (a *fakeAPI) PhoneNumber(_ context.Context, openID, code string) (session.PhoneNumber, error) {
	a.record("phone", openID, secret.String{})
	if k, ok := a.errs[code]; ok {
		return session.PhoneNumber{}, &platform.Error{Host: "wechat", Kind: k, Code: "x"}
	}
	if owner, ok := a.owners[code]; ok && openID != "" && openID != owner {
		return session.PhoneNumber{}, &platform.Error{Host: "wechat", Kind: platform.KindInvalidCode, Code: "40003"}
	}
	n, ok := a.phones[code]
	if !ok {
		return session.PhoneNumber{}, &platform.Error{Host: "wechat", Kind: platform.KindInvalidCode, Code: "40029"}
	}
	return session.PhoneNumber{PhoneNumber: n, PurePhoneNumber: n, CountryCode: "86"}, nil
}

func (a *fakeAPI) CheckSessionKey(_ context.Context, openID string, key secret.String) (bool, error) {
	a.record("check", openID, key)
	return key.Reveal() == a.validKey, nil
}

func (a *fakeAPI) ResetSessionKey(_ context.Context, openID string, key secret.String) (secret.String, error) {
	a.record("reset", openID, key)
	return secret.New(a.newKey), nil
}

func (a *fakeAPI) UnionID(_ context.Context, openID string) (string, error) {
	a.record("unionid", openID, secret.String{})
	if a.unionErr != nil {
		return "", a.unionErr
	}
	return a.unionIDs[openID], nil
}

func TestPhoneByCode(t *testing.T) {
	f := newFixture(t, withApps(apiApps))
	ctx := context.Background()
	f.api.phones["pc-ann"] = "13800138000"
	f.api.errs["pc-busy"] = platform.KindBusy
	tok := f.login(t, "wx", "ann", wxKey1)

	p, err := f.svc.Phone(ctx, tok.AccessToken.Reveal(), session.PhoneInput{Code: "pc-ann"})
	if err != nil || p.Number.PhoneNumber != "13800138000" || p.Number.CountryCode != "86" || p.UserID != tok.User.ID || p.Linked {
		t.Fatalf("Phone = %+v, %v", p, err)
	}
	stored, source, ok, err := f.svc.StoredPhone(ctx, tok.User.ID)
	if err != nil || !ok || stored != p.Number || source != store.PhoneFromPlatform {
		t.Fatalf("StoredPhone = %+v %q %v %v", stored, source, ok, err)
	}
	// The code went to the platform with the session's openid, for it to
	// check that the code is this user's.
	if seen := f.api.seenOpens; len(seen) != 1 || seen[0] != tok.User.OpenID || seen[0] == "" {
		t.Fatalf("openids sent with the code: %q, want [%q]", seen, tok.User.OpenID)
	}
	// The store holds it sealed.
	u, err := f.store.GetUser(ctx, tok.User.ID)
	if err != nil || bytes.Contains(u.Phone.Sealed, []byte("13800138000")) || u.Phone.App != "wx" {
		t.Fatalf("stored user %+v, %v", u.Phone, err)
	}

	for _, c := range []struct {
		name string
		in   session.PhoneInput
		want mplogin.Code
	}{
		{"used code", session.PhoneInput{Code: "pc-unknown"}, mplogin.CodeInvalidCode},
		{"platform busy", session.PhoneInput{Code: "pc-busy"}, mplogin.CodePlatformUnavailable},
		{"neither", session.PhoneInput{}, mplogin.CodeInvalidRequest},
		{"both", session.PhoneInput{Code: "pc-ann", EncryptedData: "x", IV: "y"}, mplogin.CodeInvalidRequest},
		{"huge code", session.PhoneInput{Code: strings.Repeat("c", session.MaxCodeLen+1)}, mplogin.CodeInvalidRequest},
	} {
		if _, err := f.svc.Phone(ctx, tok.AccessToken.Reveal(), c.in); code(t, err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	if _, err := f.svc.Phone(ctx, "mpa_bogus", session.PhoneInput{Code: "pc-ann"}); code(t, err) != mplogin.CodeInvalidToken {
		t.Errorf("bad token: %v", err)
	}

	// An app without an access token cannot resolve codes.
	bare := f.login(t, "bare", "bob", wxKey1)
	if _, err := f.svc.Phone(ctx, bare.AccessToken.Reveal(), session.PhoneInput{Code: "pc-ann"}); code(t, err) != mplogin.CodeInvalidRequest || !errors.Is(err, session.ErrNotSupported) {
		t.Errorf("app without phone codes: %v", err)
	}
	if strings.Contains(f.logs.String(), "13800138000") {
		t.Error("the phone number was logged")
	}
}

// A phone code issued to another user is refused as an invalid code, and
// nothing is recorded on the caller.
func TestPhoneCodeOfAnotherUser(t *testing.T) {
	f := newFixture(t, withApps(apiApps))
	ctx := context.Background()
	ann := f.login(t, "wx", "ann", wxKey1)
	bob := f.login(t, "wx", "bob", wxKey2)
	f.api.phones["pc-ann"] = "13800138000"
	f.api.owners["pc-ann"] = ann.User.OpenID

	_, err := f.svc.Phone(ctx, bob.AccessToken.Reveal(), session.PhoneInput{Code: "pc-ann"})
	if code(t, err) != mplogin.CodeInvalidCode {
		t.Fatalf("bob with ann's phone code: %v, want invalid_code", err)
	}
	if _, _, ok, err := f.svc.StoredPhone(ctx, bob.User.ID); ok || err != nil {
		t.Fatalf("bob has a phone number: %v %v", ok, err)
	}
	if p, err := f.svc.Phone(ctx, ann.AccessToken.Reveal(), session.PhoneInput{Code: "pc-ann"}); err != nil || p.Number.PhoneNumber != "13800138000" {
		t.Fatalf("ann with her own code: %+v %v", p, err)
	}
	if strings.Contains(f.logs.String(), "13800138000") {
		t.Error("the phone number was logged")
	}
}

func TestPhoneByPayload(t *testing.T) {
	f := newFixture(t, withApps(apiApps))
	ctx := context.Background()

	wx := f.login(t, "wx", "ann", wxKey1)
	plain := `{"phoneNumber":"+1 555 0100","purePhoneNumber":"5550100","countryCode":"1","watermark":{"appid":"` + wxAppID + `","timestamp":` +
		itoa(f.clock.Now().Unix()) + `}}`
	in := encWX(t, wxKey1, plain)
	p, err := f.svc.Phone(ctx, wx.AccessToken.Reveal(), session.PhoneInput{EncryptedData: in.EncryptedData, IV: in.IV})
	if err != nil || p.Number != (session.PhoneNumber{PhoneNumber: "+1 555 0100", PurePhoneNumber: "5550100", CountryCode: "1"}) {
		t.Fatalf("wechat payload: %+v, %v", p, err)
	}
	if _, source, _, _ := f.svc.StoredPhone(ctx, wx.User.ID); source != store.PhoneFromUserData {
		t.Errorf("source %q", source)
	}
	if f.api.count("phone") != 0 {
		t.Error("a payload reached the platform")
	}

	// A payload that opens but holds no number, and one under another key.
	info := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	_, err = f.svc.Phone(ctx, wx.AccessToken.Reveal(), session.PhoneInput{EncryptedData: info.EncryptedData, IV: info.IV})
	if err != session.ErrDecryptFailed {
		t.Errorf("user info as phone: %v", err)
	}
	bad := encWX(t, wxKey2, plain)
	_, err = f.svc.Phone(ctx, wx.AccessToken.Reveal(), session.PhoneInput{EncryptedData: bad.EncryptedData, IV: bad.IV})
	if err != session.ErrDecryptFailed {
		t.Errorf("wrong key: %v", err)
	}

	bd := f.login(t, "bd", "cat", bdKey1)
	data, iv, err := userdata.EncryptBaidu(secret.New(bdKey1), []byte(`{"mobile":"13900139000"}`), bdAppKey, bytes.Repeat([]byte{1}, 16), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err = f.svc.Phone(ctx, bd.AccessToken.Reveal(), session.PhoneInput{EncryptedData: data, IV: iv})
	if err != nil || p.Number != (session.PhoneNumber{PhoneNumber: "13900139000", PurePhoneNumber: "13900139000", CountryCode: "86"}) {
		t.Fatalf("baidu payload: %+v, %v", p, err)
	}
}

func TestCheckPlatform(t *testing.T) {
	f := newFixture(t, withApps(apiApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "ann", wxKey1)

	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); err != nil || f.api.count("check") != 0 {
		t.Fatalf("a plain check asked the platform: %v", err)
	}
	f.api.validKey = wxKey1
	info, err := f.svc.CheckPlatform(ctx, tok.AccessToken.Reveal())
	if err != nil || info.SessionKeyValid == nil || !*info.SessionKeyValid {
		t.Fatalf("valid key: %+v, %v", info, err)
	}
	if got := f.api.seenOpens[len(f.api.seenOpens)-1]; got != tok.User.OpenID {
		t.Errorf("checked openid %q, want %q", got, tok.User.OpenID)
	}
	f.api.validKey = wxKey2
	info, err = f.svc.CheckPlatform(ctx, tok.AccessToken.Reveal())
	if err != nil || info.SessionKeyValid == nil || *info.SessionKeyValid {
		t.Fatalf("stale key: %+v, %v", info, err)
	}
	bare := f.login(t, "bare", "bob", wxKey1)
	if _, err := f.svc.CheckPlatform(ctx, bare.AccessToken.Reveal()); !errors.Is(err, session.ErrNotSupported) {
		t.Errorf("app without session key checks: %v", err)
	}
	if _, err := f.svc.CheckPlatform(ctx, "mpa_x"); code(t, err) != mplogin.CodeInvalidToken {
		t.Errorf("bad token: %v", err)
	}
}

func TestResetSessionKey(t *testing.T) {
	f := newFixture(t, withApps(apiApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "ann", wxKey1)
	other := f.login(t, "wx", "bob", wxKey1)
	f.api.newKey = wxKey2
	n, err := f.svc.ResetSessionKey(ctx, "wx", tok.User.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.api.seenKeys) != 1 || f.api.seenKeys[0] != wxKey1 {
		t.Fatalf("the platform was shown keys %v, want the current one", len(f.api.seenKeys))
	}
	// A leaked key is a compromised login: the identity's session ended,
	// another user's did not.
	if n != 1 {
		t.Fatalf("ResetSessionKey ended %d sessions, want 1", n)
	}
	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("session of the reset identity: %v", err)
	}
	if _, err := f.svc.Check(ctx, other.AccessToken.Reveal()); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	tok = f.login(t, "wx", "ann", wxKey2) // the platform's current key
	// In a new session, data under the new key opens.
	now := f.clock.Now()
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), encWX(t, wxKey2, wxPlain(wxAppID, now))); err != nil {
		t.Fatalf("decrypt after reset: %v", err)
	}
	f.clock.Advance(session.DefaultPolicy.KeyGrace + mplogin.MaxClockSkew + time.Second)
	in := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), in); err != session.ErrDecryptFailed {
		t.Fatalf("old key after the grace period: %v", err)
	}

	if _, err := f.svc.ResetSessionKey(ctx, "wx", "nobody"); code(t, err) != mplogin.CodeInvalidRequest {
		t.Errorf("unknown openid: %v", err)
	}
	if _, err := f.svc.ResetSessionKey(ctx, "nope", tok.User.OpenID); code(t, err) != mplogin.CodeUnknownApp {
		t.Errorf("unknown app: %v", err)
	}
	if strings.Contains(f.logs.String(), wxKey2) || strings.Contains(f.logs.String(), wxKey1) {
		t.Error("a session key was logged")
	}
}

func TestUnionIDAtLogin(t *testing.T) {
	f := newFixture(t, withApps(apiApps))
	f.api.unionIDs["openid-cat"] = "union-cat"
	a := f.login(t, "bd", "cat", bdKey1)
	if a.User.UnionID != "union-cat" || !a.User.Created {
		t.Fatalf("first login %+v", a.User)
	}
	// Known now: no second call.
	again := f.login(t, "bd", "cat", bdKey1)
	if again.User.UnionID != "union-cat" || f.api.count("unionid") != 1 {
		t.Fatalf("second login %+v, %d calls", again.User, f.api.count("unionid"))
	}
	// The same person in another app of the owner joins the user.
	b := f.login(t, "bd2", "cat", bdKey1)
	if b.User.ID != a.User.ID || b.User.Created {
		t.Fatalf("other app %+v, want user %s", b.User, a.User.ID)
	}
	info, err := f.svc.Check(context.Background(), b.AccessToken.Reveal())
	if err != nil || info.User.UnionID != "union-cat" {
		t.Fatalf("check %+v, %v", info, err)
	}

	// A failing lookup costs the login nothing.
	f.api.unionErr = &platform.Error{Host: "baidu", Kind: platform.KindUnavailable}
	d := f.login(t, "bd", "dog", bdKey1)
	if d.User.UnionID != "" || !d.User.Created {
		t.Fatalf("login with a failing unionid lookup: %+v", d.User)
	}
	// WeChat apps do not ask.
	before := f.api.count("unionid")
	f.login(t, "wx", "eve", wxKey1)
	if f.api.count("unionid") != before {
		t.Error("a WeChat login asked for a unionid")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
