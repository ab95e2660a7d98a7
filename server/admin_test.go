package server_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// adminToken is the rig's admin token (withAdmin), named "ops".
const adminToken = "admin-token-for-the-rig-0123456789-abcdef"

// withAdmin configures the admin API; the rig serves it at r.admin.
func withAdmin() rigOption { return func(o *rigOptions) { o.admin = true } }

// adminCall sends a request to the admin API at base with the bearer
// token tok ("" for none) and returns the status, the headers and the
// JSON body.
func adminCall(t *testing.T, base, method, path, tok, body string) (int, http.Header, map[string]any) {
	t.Helper()
	return send(t, base, method, path, tok, body, nil)
}

func (r *rig) adm(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	status, _, v := adminCall(t, r.admin.URL, method, path, adminToken, body)
	return status, v
}

// auditLines are the admin audit lines logged so far.
func (r *rig) auditLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range r.logLines(t) {
		if l["msg"] == "admin" {
			out = append(out, l)
		}
	}
	return out
}

func TestAdminAuth(t *testing.T) {
	r := newRig(t, withAdmin())
	for _, tok := range []string{"", "wrong-token-of-enough-length-0123456789", adminToken + "x", strings.ToUpper(adminToken)} {
		for _, p := range []struct{ method, path string }{{"GET", "/admin/v1/users/x"}, {"DELETE", "/admin/v1/users/x"}, {"GET", "/admin/v1/nope"}} {
			status, h, v := adminCall(t, r.admin.URL, p.method, p.path, tok, "")
			if status != 401 || h.Get("WWW-Authenticate") != `Bearer realm="mplogin-admin"` || v["error"] != "invalid_token" || v["message"] == "" {
				t.Errorf("%s %s with %q: %d %q %v", p.method, p.path, tok, status, h.Get("WWW-Authenticate"), v)
			}
		}
	}
	if n := len(r.auditLines(t)); n != 0 {
		t.Errorf("%d audit lines for unauthenticated requests", n)
	}
	// The public listener knows no admin route, whatever the token.
	for _, p := range []string{"/admin/v1/users/x", "/admin/v1/users", "/admin/"} {
		if status, v := r.call(t, "GET", p, adminToken, ""); status != 404 || v["error"] != "not_found" {
			t.Errorf("public %s: %d %v", p, status, v)
		}
	}
	if status, v := r.adm(t, "GET", "/admin/v1/nope", ""); status != 404 || v["error"] != "not_found" {
		t.Errorf("unknown admin route: %d %v", status, v)
	}
	// Without admin, no admin API at all.
	if newRig(t).srv.AdminHandler() != nil {
		t.Error("an admin handler without admin configured")
	}
	if strings.Contains(r.logs.String(), adminToken) {
		t.Error("the log carries the admin token")
	}
}

func TestAdminAPI(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		r := newRig(t, withConfig(c.apply), withAdmin())
		testAdminAPI(t, r)
	})
}

func testAdminAPI(t *testing.T, r *rig) {
	suffix := time.Now().Format("150405.000000000")
	alice, bob := "alice-"+suffix, "bob-"+suffix
	a := r.login(t, "wechat", wxAppID, "w", alice)
	pc, _ := r.em.PhoneCode(wxAppID, alice)
	if status, v := r.call(t, "POST", "/v1/phone", a.AccessToken, `{"code":"`+pc+`"}`); status != 200 {
		t.Fatalf("phone: %d %v", status, v)
	}
	b := r.login(t, "baidu", bdAppKey, "b", bob)
	calls := 0
	adm := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		calls++
		return r.adm(t, method, path, body)
	}

	// Describe and find.
	status, u := adm("GET", "/admin/v1/users/"+a.User.ID, "")
	if status != 200 || u["id"] != a.User.ID || u["blocked"] != false || u["created_at"] == nil || u["last_login_at"] == nil {
		t.Fatalf("user: %d %v", status, u)
	}
	phone := r.em.PhoneNumber(alice)
	if p, _ := u["phone"].(map[string]any); p == nil || p["masked"] != phone[:3]+"****"+phone[7:] || p["source"] != "platform" {
		t.Fatalf("phone: %v", u["phone"])
	}
	ids, _ := u["identities"].([]any)
	if len(ids) != 1 || ids[0].(map[string]any)["openid"] != a.User.OpenID || ids[0].(map[string]any)["platform"] != "wechat" {
		t.Fatalf("identities: %v", u["identities"])
	}
	if status, v := adm("GET", "/admin/v1/users?app=w&openid="+a.User.OpenID, ""); status != 200 || v["id"] != a.User.ID {
		t.Fatalf("find by openid: %d %v", status, v)
	}
	if status, v := adm("GET", "/admin/v1/users?unionid="+b.User.UnionID+"&platform=baidu", ""); b.User.UnionID == "" || status != 200 || v["id"] != b.User.ID {
		t.Fatalf("find by unionid %q: %d %v", b.User.UnionID, status, v)
	}
	for _, q := range []string{"", "?app=w", "?app=w&openid=x&unionid=y", "?app=w&openid=x&openid=y", "?user=x"} {
		if status, v := adm("GET", "/admin/v1/users"+q, ""); status != 400 {
			t.Errorf("find %q: %d %v", q, status, v)
		}
	}
	for _, p := range []string{"/admin/v1/users/nobody", "/admin/v1/users?app=w&openid=nobody", "/admin/v1/users/nobody/sessions"} {
		if status, v := adm("GET", p, ""); status != 404 || v["error"] != "not_found" {
			t.Errorf("%s: %d %v", p, status, v)
		}
	}

	// Sessions: listed without tokens; revoked all at once.
	a2 := r.login(t, "wechat", wxAppID, "w", alice)
	status, v := adm("GET", "/admin/v1/users/"+a.User.ID+"/sessions", "")
	ss, _ := v["sessions"].([]any)
	if status != 200 || len(ss) != 2 || ss[0].(map[string]any)["app"] != "w" || ss[0].(map[string]any)["id"] == "" {
		t.Fatalf("sessions: %d %v", status, v)
	}
	if status, v := adm("POST", "/admin/v1/users/"+a.User.ID+"/revoke", ""); status != 200 || v["revoked"] != 2.0 {
		t.Fatalf("revoke: %d %v", status, v)
	}
	for _, tok := range []string{a.AccessToken, a2.AccessToken} {
		if status, _ := r.call(t, "GET", "/v1/session", tok, ""); status != 401 {
			t.Fatalf("session after revoke: %d", status)
		}
	}

	// Block: the sessions end, logins answer 403 user_blocked; unblock:
	// logins work again.
	a3 := r.login(t, "wechat", wxAppID, "w", alice)
	if status, v := adm("POST", "/admin/v1/users/"+a.User.ID+"/block", `{"reason":"chargeback fraud"}`); status != 200 || v["revoked"] != 1.0 {
		t.Fatalf("block: %d %v", status, v)
	}
	if status, _ := r.call(t, "GET", "/v1/session", a3.AccessToken, ""); status != 401 {
		t.Fatalf("session after block: %d", status)
	}
	code, _ := r.em.Login("wechat", wxAppID, alice, "")
	if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`); status != 403 || v["error"] != "user_blocked" {
		t.Fatalf("login when blocked: %d %v", status, v)
	}
	if status, v := adm("GET", "/admin/v1/users/"+a.User.ID+"/sessions", ""); status != 200 || len(v["sessions"].([]any)) != 0 {
		t.Fatalf("sessions after a blocked login: %d %v", status, v)
	}
	if status, v := adm("GET", "/admin/v1/users/"+a.User.ID, ""); v["blocked"] != true || v["blocked_reason"] != "chargeback fraud" {
		t.Fatalf("blocked user: %d %v", status, v)
	}
	if status, v := adm("POST", "/admin/v1/users/"+a.User.ID+"/block", `{"reason":1}`); status != 400 {
		t.Errorf("block with a bad body: %d %v", status, v)
	}
	if status, _ := adm("POST", "/admin/v1/users/"+a.User.ID+"/unblock", ""); status != 204 {
		t.Fatalf("unblock: %d", status)
	}
	a4 := r.login(t, "wechat", wxAppID, "w", alice)
	if a4.User.ID != a.User.ID || *a4.User.Created {
		t.Fatalf("login after unblock: %+v", a4.User)
	}

	// Merge: bob's baidu identity and session answer under alice.
	if status, v := adm("POST", "/admin/v1/users/"+a.User.ID+"/merge", `{"from":"`+b.User.ID+`"}`); status != 200 || v["id"] != a.User.ID || len(v["identities"].([]any)) != 2 {
		t.Fatalf("merge: %d %v", status, v)
	}
	if status, v := adm("GET", "/admin/v1/users?app=b&openid="+b.User.OpenID, ""); status != 200 || v["id"] != a.User.ID {
		t.Fatalf("from's identity after merge: %d %v", status, v)
	}
	if status, v := r.call(t, "GET", "/v1/session", b.AccessToken, ""); status != 200 || v["user"].(map[string]any)["id"] != a.User.ID {
		t.Fatalf("from's session after merge: %d %v", status, v)
	}
	if status, v := adm("POST", "/admin/v1/users/"+a.User.ID+"/merge", `{"from":"`+a.User.ID+`"}`); status != 400 {
		t.Errorf("self merge: %d %v", status, v)
	}
	if status, v := adm("POST", "/admin/v1/users/"+a.User.ID+"/merge", `{"from":"`+b.User.ID+`"}`); status != 404 {
		t.Errorf("merge of a merged user: %d %v", status, v)
	}

	// Erase: the sessions fail, a later login is a new user.
	if status, _ := adm("DELETE", "/admin/v1/users/"+a.User.ID, ""); status != 204 {
		t.Fatalf("erase: %d", status)
	}
	for _, tok := range []string{a4.AccessToken, b.AccessToken} {
		if status, _ := r.call(t, "GET", "/v1/session", tok, ""); status != 401 {
			t.Fatalf("session after erase: %d", status)
		}
	}
	if status, _ := adm("DELETE", "/admin/v1/users/"+a.User.ID, ""); status != 404 {
		t.Fatalf("erase twice: %d", status)
	}
	fresh := r.login(t, "wechat", wxAppID, "w", alice)
	if !*fresh.User.Created || fresh.User.ID == a.User.ID {
		t.Fatalf("login after erase: %+v", fresh.User)
	}

	// One audit line per action, naming the admin and the user; no token,
	// no phone number anywhere in the log.
	lines := r.auditLines(t)
	if len(lines) != calls {
		t.Fatalf("%d audit lines for %d admin calls", len(lines), calls)
	}
	actions := map[string]int{}
	for _, l := range lines {
		if l["admin"] != "ops" || l["action"] == nil || l["result"] == nil {
			t.Errorf("audit line %v", l)
		}
		if l["result"] == "ok" {
			actions[l["action"].(string)]++
			if l["action"] != "find" && l["user"] != a.User.ID {
				t.Errorf("audit line of another user: %v", l)
			}
		}
	}
	for _, act := range []string{"user", "find", "sessions", "revoke", "block", "unblock", "merge", "erase"} {
		if actions[act] == 0 {
			t.Errorf("no audit line of a successful %s: %v", act, actions)
		}
	}
	logs := r.logs.String()
	for _, s := range []string{adminToken, phone, a.AccessToken, a.RefreshToken, b.AccessToken, a4.AccessToken} {
		if strings.Contains(logs, s) {
			t.Errorf("the log carries a secret or a phone number: %.12s…", s)
		}
	}
}

// Serve starts the admin API on admin.listen, beside the public listener,
// and stops both with its context.
func TestServeAdminListener(t *testing.T) {
	r := newRig(t, withAdmin())
	s := r.serve(t, "admin")
	adminURL := s.own["admin"]
	if status, h, _ := adminCall(t, adminURL, "GET", "/admin/v1/users/nobody", "", ""); status != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("admin listener without a token: %d", status)
	}
	if status, _, v := adminCall(t, adminURL, "GET", "/admin/v1/users/nobody", adminToken, ""); status != 404 || v["error"] != "not_found" {
		t.Errorf("admin listener: %d %v", status, v)
	}
	if status, _, v := adminCall(t, adminURL, "GET", "/healthz", adminToken, ""); status != 404 {
		t.Errorf("the admin listener serves the public API: %d %v", status, v)
	}
	if status, _, v := adminCall(t, s.public, "GET", "/admin/v1/users/nobody", adminToken, ""); status != 404 || v["error"] != "not_found" {
		t.Errorf("public listener: %d %v", status, v)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(adminURL, "http://")); err == nil {
		c.Close()
		t.Error("the admin listener is still open after Serve returned")
	}
}
