package session_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/userdata"
)

// linking is the default policy with linking by phone.
func linking() fixtureOption {
	p := session.DefaultPolicy
	p.LinkByPhone = true
	return withPolicy(p)
}

// baiduPhone proves number on a Baidu session: a payload under its key.
func (f *fixture) baiduPhone(t *testing.T, tok *session.Tokens, key, number string) (session.PhoneResult, error) {
	t.Helper()
	data, iv, err := userdata.EncryptBaidu(secret.New(key), []byte(`{"mobile":"`+number+`"}`), bdAppKey, bytes.Repeat([]byte{1}, 16), nil)
	if err != nil {
		t.Fatal(err)
	}
	return f.svc.Phone(context.Background(), tok.AccessToken.Reveal(), session.PhoneInput{EncryptedData: data, IV: iv})
}

// wechatPhone proves number on a WeChat session: a phone code of its user.
func (f *fixture) wechatPhone(t *testing.T, tok *session.Tokens, number string) (session.PhoneResult, error) {
	t.Helper()
	code := "pc-" + tok.User.OpenID
	f.api.phones[code] = number
	f.api.owners[code] = tok.User.OpenID
	return f.svc.Phone(context.Background(), tok.AccessToken.Reveal(), session.PhoneInput{Code: code})
}

func TestLinkByPhone(t *testing.T) {
	allWritePaths(t, testLinkByPhone, withApps(apiApps), linking())
}

// testLinkByPhone: alice logs in silently on WeChat, binds her phone, logs
// in on Baidu (a new user: no unionid crosses hosts), binds the same phone,
// and is one user with two identities; her Baidu session keeps working.
func testLinkByPhone(t *testing.T, f *fixture) {
	ctx := context.Background()
	wx := f.login(t, "wx", "alice", wxKey1)
	r, err := f.wechatPhone(t, wx, "13800138000")
	if err != nil || r.Linked || r.UserID != wx.User.ID {
		t.Fatalf("first proof = %+v, %v; want recorded on alice's WeChat user, not linked", r, err)
	}
	bd := f.login(t, "bd", "alice", bdKey1)
	if !bd.User.Created || bd.User.ID == wx.User.ID {
		t.Fatalf("Baidu login = user %s, created %v; want a new user", bd.User.ID, bd.User.Created)
	}
	r, err = f.baiduPhone(t, bd, bdKey1, "13800138000")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Linked || r.UserID != wx.User.ID || r.Number.PurePhoneNumber != "13800138000" {
		t.Fatalf("second proof = %+v; want linked to %s", r, wx.User.ID)
	}
	me, err := f.svc.Me(ctx, bd.AccessToken.Reveal())
	if err != nil {
		t.Fatalf("the Baidu session after the link: %v", err)
	}
	if me.ID != wx.User.ID || len(me.Identities) != 2 || me.Phone == nil || me.Phone.Masked != "138****8000" {
		t.Fatalf("user after the link = %+v; want %s with two identities and the phone", me, wx.User.ID)
	}
	if _, err := f.svc.User(ctx, bd.User.ID); code(t, err) != mplogin.CodeNotFound {
		t.Fatalf("the Baidu user after the link: %v, want not_found", err)
	}
	if _, err := f.svc.Refresh(ctx, bd.RefreshToken.Reveal()); err != nil {
		t.Fatalf("refresh of the moved session: %v", err)
	}
	// The number is recorded once more, for the surviving user, and opens.
	if p, _, ok, err := f.svc.StoredPhone(ctx, wx.User.ID); err != nil || !ok || p.PurePhoneNumber != "13800138000" {
		t.Fatalf("stored phone = %v, %v, %v", p, ok, err)
	}
	// A later Baidu login is the one user, not a new one.
	again := f.login(t, "bd", "alice", bdKey1)
	if again.User.ID != wx.User.ID || again.User.Created {
		t.Fatalf("next Baidu login = user %s, created %v; want %s", again.User.ID, again.User.Created, wx.User.ID)
	}
	// Proving it again changes nothing.
	if r, err := f.baiduPhone(t, again, bdKey1, "13800138000"); err != nil || r.Linked || r.UserID != wx.User.ID {
		t.Fatalf("proof by the linked user = %+v, %v", r, err)
	}
	if strings.Contains(f.logs.String(), "13800138000") {
		t.Error("the phone number was logged")
	}
	if !strings.Contains(f.logs.String(), "users linked by phone number") {
		t.Error("the link was not logged")
	}
}

// TestLinkByPhoneOff: by default, one number on two users stays two users.
func TestLinkByPhoneOff(t *testing.T) {
	f := newFixture(t, withApps(apiApps))
	ctx := context.Background()
	wx := f.login(t, "wx", "alice", wxKey1)
	if _, err := f.wechatPhone(t, wx, "13800138000"); err != nil {
		t.Fatal(err)
	}
	bd := f.login(t, "bd", "alice", bdKey1)
	r, err := f.baiduPhone(t, bd, bdKey1, "13800138000")
	if err != nil || r.Linked || r.UserID != bd.User.ID {
		t.Fatalf("proof = %+v, %v; want recorded on the Baidu user", r, err)
	}
	// Both are found by it: the oldest first.
	u, err := f.svc.FindUser(ctx, session.UserQuery{Phone: "+86 138 0013 8000"})
	if err != nil || u.ID != wx.User.ID {
		t.Fatalf("FindUser(phone) = %s, %v; want %s", u.ID, err, wx.User.ID)
	}
	if _, err := f.svc.User(ctx, bd.User.ID); err != nil {
		t.Fatalf("the Baidu user: %v", err)
	}
}

// TestLinkByPhoneConflict: a user bound to one number who proves another
// user's number is refused, and nothing changes.
func TestLinkByPhoneConflict(t *testing.T) {
	f := newFixture(t, withApps(apiApps), linking())
	ctx := context.Background()
	bob := f.login(t, "wx", "bob", wxKey1)
	if _, err := f.wechatPhone(t, bob, "13800000001"); err != nil {
		t.Fatal(err)
	}
	carol := f.login(t, "bd", "carol", bdKey1)
	if _, err := f.baiduPhone(t, carol, bdKey1, "13800000002"); err != nil {
		t.Fatal(err)
	}
	_, err := f.baiduPhone(t, carol, bdKey1, "13800000001")
	if code(t, err) != mplogin.CodePhoneConflict {
		t.Fatalf("proof of bob's number by carol: %v, want phone_conflict", err)
	}
	for id, want := range map[string]string{bob.User.ID: "138****0001", carol.User.ID: "138****0002"} {
		u, err := f.svc.User(ctx, id)
		if err != nil || u.Phone == nil || u.Phone.Masked != want || len(u.Identities) != 1 {
			t.Fatalf("user %s after the conflict = %+v, %v; want phone %s, one identity", id, u, err, want)
		}
	}
}

// TestLinkByPhoneBlocked: a blocked holder takes nobody in.
func TestLinkByPhoneBlocked(t *testing.T) {
	f := newFixture(t, withApps(apiApps), linking())
	ctx := context.Background()
	bob := f.login(t, "wx", "bob", wxKey1)
	if _, err := f.wechatPhone(t, bob, "13800000001"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.BlockUser(ctx, bob.User.ID, "fraud"); err != nil {
		t.Fatal(err)
	}
	dave := f.login(t, "bd", "dave", bdKey1)
	if _, err := f.baiduPhone(t, dave, bdKey1, "13800000001"); code(t, err) != mplogin.CodeUserBlocked {
		t.Fatalf("proof of a blocked user's number: %v, want user_blocked", err)
	}
	u, err := f.svc.User(ctx, dave.User.ID)
	if err != nil || u.Phone != nil || len(u.Identities) != 1 {
		t.Fatalf("dave after the refusal = %+v, %v; want unchanged", u, err)
	}
}

// TestLinkByPhoneWholeUser: the caller's user moves whole, with the
// identities a unionid joined to it, and its sessions keep working.
func TestLinkByPhoneWholeUser(t *testing.T) {
	f := newFixture(t, withApps(apiApps), linking())
	ctx := context.Background()
	f.api.unionIDs["openid-erin"] = "union-erin"
	bd := f.login(t, "bd", "erin", bdKey1)
	f.keyPlat.setKey(bdKey1)
	bd2, err := f.svc.Login(ctx, "bd2", "erin.2")
	if err != nil || bd2.User.ID != bd.User.ID {
		t.Fatalf("second Baidu app = %v, %v; want erin's user through the unionid", bd2, err)
	}
	wx := f.login(t, "wx", "erin", wxKey1)
	if _, err := f.wechatPhone(t, wx, "13800000005"); err != nil {
		t.Fatal(err)
	}
	r, err := f.baiduPhone(t, bd, bdKey1, "13800000005")
	if err != nil || !r.Linked || r.UserID != wx.User.ID {
		t.Fatalf("proof = %+v, %v; want linked to %s", r, err, wx.User.ID)
	}
	u, err := f.svc.User(ctx, wx.User.ID)
	if err != nil || len(u.Identities) != 3 {
		t.Fatalf("user after the link = %+v, %v; want three identities", u, err)
	}
	for _, tok := range []*session.Tokens{bd, bd2, wx} {
		if me, err := f.svc.Me(ctx, tok.AccessToken.Reveal()); err != nil || me.ID != wx.User.ID {
			t.Fatalf("session after the link = %s, %v; want %s", me.ID, err, wx.User.ID)
		}
	}
}

// TestLinkByPhoneDouyinCode: a Douyin phone code, traded without the
// user's openid, records the number but links nobody.
func TestLinkByPhoneDouyinCode(t *testing.T) {
	f := newFixture(t, linking(), withApps(func(f *fixture) []session.App {
		return append(apiApps(f), session.App{Name: "tt", Family: "douyin", AppID: ttAppID,
			Client: douyinPlatform{key: wxKey1}, CodeTTL: 5 * time.Minute, Phones: f.api})
	}))
	ctx := context.Background()
	wx := f.login(t, "wx", "alice", wxKey1)
	if _, err := f.wechatPhone(t, wx, "13800138000"); err != nil {
		t.Fatal(err)
	}
	tt := f.loginWith(t, session.LoginRequest{Code: "alice.1"})
	f.api.phones["pc-tt"] = "13800138000"
	r, err := f.svc.Phone(ctx, tt.AccessToken.Reveal(), session.PhoneInput{Code: "pc-tt"})
	if err != nil || r.Linked || r.UserID != tt.User.ID {
		t.Fatalf("Douyin phone code = %+v, %v; want recorded on the Douyin user, not linked", r, err)
	}
	// A payload under the Douyin session key is bound to the caller: it links.
	plain := `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86"}`
	in := encWX(t, wxKey1, plain)
	r, err = f.svc.Phone(ctx, tt.AccessToken.Reveal(), session.PhoneInput{EncryptedData: in.EncryptedData, IV: in.IV})
	if err != nil || !r.Linked || r.UserID != wx.User.ID {
		t.Fatalf("Douyin phone payload = %+v, %v; want linked to %s", r, err, wx.User.ID)
	}
}
