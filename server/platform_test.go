package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/baidu"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
)

func (r *rig) login(t *testing.T, platform, appid, app, user string) tokenReply {
	t.Helper()
	code, err := r.em.Login(platform, appid, user, "")
	if err != nil {
		t.Fatal(err)
	}
	status, v := r.call(t, "POST", "/v1/login", "", `{"app":"`+app+`","code":"`+code+`"}`)
	if status != 200 {
		t.Fatalf("login %s: %d %v", user, status, v)
	}
	return tokensOf(t, v)
}

// 200 concurrent requests that all need the app's access token, which
// nobody has fetched yet, cause one fetch; when WeChat then reports the
// token invalid, the service fetches once more and the call succeeds.
func TestAccessTokenOneFetchAndRefetch(t *testing.T) {
	// One session's 200 checks would be a flood to the verify limits.
	r := newRig(t, withConfig(func(c *config.Config) { c.Limits.Verify = config.RouteLimit{} }))
	access := r.login(t, "wechat", wxAppID, "w", "alice").AccessToken

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			status, v := r.call(t, "GET", "/v1/session?verify=platform", access, "")
			if status != 200 || v["session_key_valid"] != true {
				errs <- fmt.Errorf("%d %v", status, v)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := r.em.Stats()[wechat.PathStableToken]; n != 1 {
		t.Fatalf("%d stable_token fetches for 200 callers, want 1", n)
	}

	r.em.ExpireTokens("wechat", wxAppID) // WeChat now answers 40001 for it
	pc, err := r.em.PhoneCode(wxAppID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	status, v := r.call(t, "POST", "/v1/phone", access, `{"code":"`+pc+`"}`)
	if status != 200 || v["phone_number"] != r.em.PhoneNumber("alice") {
		t.Fatalf("phone after the token was invalidated: %d %v", status, v)
	}
	st := r.em.Stats()
	if st[wechat.PathStableToken] != 2 || st[wechat.PathPhoneNumber] != 2 {
		t.Fatalf("stable_token %d, getuserphonenumber %d: want one refetch and one retry",
			st[wechat.PathStableToken], st[wechat.PathPhoneNumber])
	}
	// The code was not spent by the rejected call; now it is.
	if status, v := r.call(t, "POST", "/v1/phone", access, `{"code":"`+pc+`"}`); status != 401 || v["error"] != "invalid_code" {
		t.Fatalf("phone code used twice: %d %v", status, v)
	}
}

// After an operator's reset, the platform holds a new key and so do we;
// the identity's sessions, a leaked key's logins, have ended (both of
// them, a refreshed one too), another user's have not. In a new session the
// check says valid, and data under the new key opens.
func TestResetSessionKeyEndToEnd(t *testing.T) {
	r := newRig(t)
	login := r.login(t, "wechat", wxAppID, "w", "bob")
	openID := login.User.OpenID
	second := r.login(t, "wechat", wxAppID, "w", "bob")
	status, refreshed := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+second.RefreshToken+`"}`)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, refreshed)
	}
	other := r.login(t, "wechat", wxAppID, "w", "carol").AccessToken
	before, _ := r.em.SessionKey("wechat", wxAppID, "bob")

	n, err := r.srv.Sessions().ResetSessionKey(t.Context(), "w", openID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("ResetSessionKey ended %d sessions, want 2", n)
	}
	after, _ := r.em.SessionKey("wechat", wxAppID, "bob")
	if after == before {
		t.Fatal("the emulator's key did not change")
	}
	for _, tok := range []string{login.AccessToken, tokensOf(t, refreshed).AccessToken} {
		if status, v := r.call(t, "GET", "/v1/session", tok, ""); status != 401 {
			t.Fatalf("session of the reset identity: %d %v, want 401", status, v)
		}
	}
	if status, v := r.call(t, "GET", "/v1/session", other, ""); status != 200 {
		t.Fatalf("another user's session: %d %v", status, v)
	}
	code, err := r.em.Login("wechat", wxAppID, "bob", after)
	if err != nil {
		t.Fatal(err)
	}
	status, relogin := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
	if status != 200 {
		t.Fatalf("login after reset: %d %v", status, relogin)
	}
	access := tokensOf(t, relogin).AccessToken
	if status, v := r.call(t, "GET", "/v1/session?verify=platform", access, ""); status != 200 || v["session_key_valid"] != true {
		t.Fatalf("verify after reset: %d %v", status, v)
	}
	ud, err := r.em.UserData("wechat", wxAppID, "bob", "userinfo")
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"encrypted_data":%q,"iv":%q,"raw_data":%q,"signature":%q}`, ud.EncryptedData, ud.IV, ud.RawData, ud.Signature)
	if status, v := r.call(t, "POST", "/v1/userdata/decrypt", access, body); status != 200 {
		t.Fatalf("decrypt after reset: %d %v", status, v)
	}
	if logs := r.logs.String(); contains(logs, before) || contains(logs, after) {
		t.Fatal("a session key is in the log")
	}

	// A Baidu app has no session-key check.
	baidu := r.login(t, "baidu", bdAppKey, "b", "bob").AccessToken
	if status, v := r.call(t, "GET", "/v1/session?verify=platform", baidu, ""); status != 400 || v["error"] != "invalid_request" {
		t.Fatalf("verify on baidu: %d %v", status, v)
	}
	if status, v := r.call(t, "GET", "/v1/session?verify=yes", access, ""); status != 400 || v["error"] != "invalid_request" {
		t.Fatalf("verify=yes: %d %v", status, v)
	}
}

// Baidu apps configured with unionid: true fetch it at login, and the same
// person in two of the owner's apps is one user.
func TestBaiduUnionIDLinksApps(t *testing.T) {
	const otherKey = "otherbaiduappkey000000000000002"
	r := newRig(t, withApps(config.App{Name: "b2", Flavor: platform.FlavorBaidu, AppKey: otherKey,
		AppSecret: secret.New("other-baidu-secret"), UnionID: true}))
	a := r.login(t, "baidu", bdAppKey, "b", "carol").User
	b := r.login(t, "baidu", otherKey, "b2", "carol").User
	want := r.em.UnionID("baidu", bdAppKey, "carol")
	if want == "" || a.UnionID != want || b.UnionID != want {
		t.Fatalf("unionids %q and %q, want %s", a.UnionID, b.UnionID, want)
	}
	if a.ID != b.ID || !*a.Created || *b.Created {
		t.Fatalf("users %s (created %v) and %s (created %v): want one user, created by the first login", a.ID, *a.Created, b.ID, *b.Created)
	}
	if a.OpenID == b.OpenID {
		t.Fatal("the two apps gave the same openid")
	}
}

// A Baidu app with login_api: access_token exchanges its codes on
// getsessionkey with its own access token, which the token manager fetches
// and shares with the unionid lookup; the secret never goes to spapi.
func TestBaiduLoginWithAccessToken(t *testing.T) {
	const key = "tokenbaiduappkey00000000000003"
	r := newRig(t, withApps(config.App{Name: "bt", Flavor: platform.FlavorBaidu, AppKey: key,
		AppSecret: secret.New("token-baidu-secret"), LoginAPI: config.LoginAPIAccessToken, UnionID: true}))
	for _, user := range []string{"dave", "erin"} {
		u := r.login(t, "baidu", key, "bt", user).User
		if u.OpenID != r.em.OpenID("baidu", key, user) || u.UnionID == "" || u.UnionID != r.em.UnionID("baidu", key, user) {
			t.Fatalf("%s: openid %q, unionid %q", user, u.OpenID, u.UnionID)
		}
	}
	st := r.em.Stats()
	if st[baidu.PathGetSessionKey] != 2 || st[baidu.PathJSCode2SessionKey] != 0 || st[baidu.PathGetSessionKeyByCode] != 0 ||
		st[baidu.PathToken] != 1 || st[baidu.PathUnionID] != 2 {
		t.Fatalf("getsessionkey %d, jscode2sessionkey %d, getSessionKeyByCode %d, token %d, getunionid %d; want 2, 0, 0, one fetch, 2",
			st[baidu.PathGetSessionKey], st[baidu.PathJSCode2SessionKey], st[baidu.PathGetSessionKeyByCode], st[baidu.PathToken], st[baidu.PathUnionID])
	}
	// The session key is the platform's: data under it opens.
	access := r.login(t, "baidu", key, "bt", "dave").AccessToken
	ud, err := r.em.UserData("baidu", key, "dave", "userinfo")
	if err != nil {
		t.Fatal(err)
	}
	if status, v := r.call(t, "POST", "/v1/userdata/decrypt", access,
		fmt.Sprintf(`{"encrypted_data":%q,"iv":%q}`, ud.EncryptedData, ud.IV)); status != 200 {
		t.Fatalf("decrypt: %d %v", status, v)
	}

	// A refused code is the user's: invalid_code, as on spapi.
	if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"bt","code":"never-minted"}`); status != 401 || v["error"] != "invalid_code" {
		t.Fatalf("login with a bad code: %d %v", status, v)
	}

	// A token the platform no longer accepts fails that login and is
	// dropped; the gateway refused it before looking at the code, so the
	// same code then logs in with a fresh token.
	r.em.ExpireTokens("baidu", key)
	code, err := r.em.Login("baidu", key, "frank", "")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"app":"bt","code":"` + code + `"}`
	if status, v := r.call(t, "POST", "/v1/login", "", body); status == 200 || v["error"] != "platform_unavailable" {
		t.Fatalf("login with a rejected token: %d %v", status, v)
	}
	if status, v := r.call(t, "POST", "/v1/login", "", body); status != 200 {
		t.Fatalf("login after the token was dropped: %d %v", status, v)
	}
	if n := r.em.Stats()[baidu.PathToken]; n != 2 {
		t.Fatalf("%d token fetches, want 2", n)
	}
	if logs := r.logs.String(); contains(logs, "token-baidu-secret") || contains(logs, code) {
		t.Fatal("the secret or the code is in the log")
	}
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }
