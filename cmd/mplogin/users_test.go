package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/session"
)

const (
	usersWxAppID    = "wx0123456789abcdef"
	usersWxSecret   = "wechat-secret-of-the-users-test"
	usersBdAppKey   = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	usersBdSecret   = "baidu-secret-of-the-users-test"
	usersAdminToken = "admin-token-of-the-users-test-0123456789"
	usersMasterKey  = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
)

// usersRig is a configuration on a SQLite file and an emulator for its
// apps (w on WeChat, b on Baidu with unionids): users log in through the
// service built in the test, and mplogin users runs on the same file.
type usersRig struct {
	t    *testing.T
	path string
	em   *emulator.Emulator
	// secrets are every secret the rig knows of: the configuration's,
	// and each token and session key a login gave. No command prints one.
	secrets []string
}

func newUsersRig(t *testing.T) *usersRig {
	t.Helper()
	em := emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: "wechat", AppID: usersWxAppID, Secret: usersWxSecret},
		{Family: "baidu", AppID: usersBdAppKey, Secret: usersBdSecret},
	}})
	emSrv := httptest.NewServer(em)
	t.Cleanup(emSrv.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "mplogin.yaml")
	src := fmt.Sprintf(`store: sqlite:%s
master_key: %s
log: {level: info, format: json}
admin:
  listen: 127.0.0.1:0
  tokens: [{name: ops, token: %s}]
apps:
  - {name: w, platform: wechat, appid: %s, secret: %s, endpoint: %s}
  - {name: b, platform: baidu, app_key: %s, app_secret: %s, endpoint: %s, unionid: true}
`, filepath.Join(dir, "mplogin.db"), usersMasterKey, usersAdminToken,
		usersWxAppID, usersWxSecret, emSrv.URL, usersBdAppKey, usersBdSecret, emSrv.URL)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(usersMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	return &usersRig{t: t, path: path, em: em, secrets: []string{usersWxSecret, usersBdSecret, usersAdminToken,
		usersMasterKey, base64.RawURLEncoding.EncodeToString(key), fmt.Sprintf("%x", key)}}
}

// open builds the service of the configuration. Close it before a command
// runs: a SQLite file has one Store at a time.
func (r *usersRig) open() *server.Server {
	r.t.Helper()
	cfg, err := config.Load(r.path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	srv, err := server.New(r.t.Context(), cfg, server.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	return srv
}

// login logs user in to app (w or b); a blocked user's refusal is an error.
func (r *usersRig) login(app, user string) (*session.Tokens, error) {
	r.t.Helper()
	family, appID := "wechat", usersWxAppID
	if app == "b" {
		family, appID = "baidu", usersBdAppKey
	}
	code, err := r.em.Login(family, appID, user, "")
	if err != nil {
		r.t.Fatal(err)
	}
	srv := r.open()
	defer srv.Close()
	tok, err := srv.Sessions().Login(r.t.Context(), app, code)
	if err != nil {
		return nil, err
	}
	sk, _ := r.em.SessionKey(family, appID, user)
	r.secrets = append(r.secrets, tok.AccessToken.Reveal(), tok.RefreshToken.Reveal(), sk)
	return tok, nil
}

func (r *usersRig) mustLogin(app, user string) *session.Tokens {
	r.t.Helper()
	tok, err := r.login(app, user)
	if err != nil {
		r.t.Fatalf("login of %s to %s: %v", user, app, err)
	}
	return tok
}

// bindPhone proves user's phone number on tok's Baidu session.
func (r *usersRig) bindPhone(tok *session.Tokens, user string) {
	r.t.Helper()
	d, err := r.em.UserData("baidu", usersBdAppKey, user, emulator.KindPhone)
	if err != nil {
		r.t.Fatal(err)
	}
	srv := r.open()
	defer srv.Close()
	in := session.PhoneInput{EncryptedData: d.EncryptedData, IV: d.IV}
	if _, err := srv.Sessions().Phone(r.t.Context(), tok.AccessToken.Reveal(), in); err != nil {
		r.t.Fatalf("phone of %s: %v", user, err)
	}
}

// check checks the access token of tok: its session's user, or the error.
func (r *usersRig) check(tok *session.Tokens) (string, error) {
	r.t.Helper()
	srv := r.open()
	defer srv.Close()
	info, err := srv.Sessions().Check(r.t.Context(), tok.AccessToken.Reveal())
	if err != nil {
		return "", err
	}
	return info.User.ID, nil
}

// admin is the admin API's answer to a GET of path, for the same store.
func (r *usersRig) admin(path string) string {
	r.t.Helper()
	srv := r.open()
	defer srv.Close()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+usersAdminToken)
	rec := httptest.NewRecorder()
	srv.AdminHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		r.t.Fatalf("admin API GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// users runs mplogin users sub with the rig's configuration and args, as
// the OS user tester, and checks that nothing it printed is a secret.
func (r *usersRig) users(sub string, args ...string) (code int, stdout, stderr string) {
	r.t.Helper()
	var out, errs bytes.Buffer
	env := func(k string) (string, bool) {
		if k == "USER" {
			return "tester", true
		}
		return "", false
	}
	code = run(r.t.Context(), append([]string{"users", sub, "--config", r.path}, args...), &out, &errs, env)
	for _, s := range r.secrets {
		if s != "" && strings.Contains(out.String()+errs.String(), s) {
			r.t.Fatalf("users %s %v printed the secret %q:\n%s\n%s", sub, args, s, out.String(), errs.String())
		}
	}
	return code, out.String(), errs.String()
}

// ok runs a command that must succeed and returns its stdout and stderr.
func (r *usersRig) ok(sub string, args ...string) (string, string) {
	r.t.Helper()
	code, out, errs := r.users(sub, args...)
	if code != 0 {
		r.t.Fatalf("users %s %v: exit %d\n%s", sub, args, code, errs)
	}
	return out, errs
}

// auditLines are the log lines of stderr with msg admin.
func auditLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(stderr) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			continue // the error line run prints
		}
		if m["msg"] == "admin" {
			out = append(out, m)
		}
	}
	return out
}

// wantAudit checks that stderr holds exactly one audit line, and that it
// is the admin API's line for the action (what the admin package writes:
// action, admin, user, result and, for a merge, from).
func wantAudit(t *testing.T, stderr, action, user, result, from string) {
	t.Helper()
	lines := auditLines(t, stderr)
	if len(lines) != 1 {
		t.Fatalf("%d audit lines, want 1:\n%s", len(lines), stderr)
	}
	l := lines[0]
	want := map[string]any{"action": action, "admin": "cli:tester", "user": user, "result": result}
	if from != "" {
		want["from"] = from
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("audit line %v: %s is %v, want %v", l, k, l[k], v)
		}
	}
	for k := range l {
		if _, ok := want[k]; !ok && !slices.Contains([]string{"time", "level", "msg"}, k) {
			t.Errorf("audit line %v: unexpected field %s", l, k)
		}
	}
}

// userAnswer is the part of the admin API's user the tests read.
type userAnswer struct {
	ID            string `json:"id"`
	Blocked       bool   `json:"blocked"`
	BlockedReason string `json:"blocked_reason"`
	Identities    []struct {
		Platform string `json:"platform"`
		OpenID   string `json:"openid"`
	} `json:"identities"`
}

func readUser(t *testing.T, out string) userAnswer {
	t.Helper()
	var u userAnswer
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatalf("not a user: %v\n%s", err, out)
	}
	return u
}

func TestUsersGetAndFind(t *testing.T) {
	r := newUsersRig(t)
	a := r.mustLogin("w", "alice")
	b := r.mustLogin("b", "bob")

	out, errs := r.ok("get", a.User.ID)
	if want := r.admin("/admin/v1/users/" + a.User.ID); out != want {
		t.Fatalf("users get printed\n%s\nthe admin API answers\n%s", out, want)
	}
	u := readUser(t, out)
	if u.ID != a.User.ID || u.Blocked || len(u.Identities) != 1 || u.Identities[0].OpenID != a.User.OpenID {
		t.Fatalf("users get: %+v", u)
	}
	if n := len(auditLines(t, errs)); n != 0 {
		t.Errorf("users get wrote %d audit lines: a lookup writes none", n)
	}

	if found, _ := r.ok("find", "--app", "w", "--openid", a.User.OpenID); found != out {
		t.Fatalf("find by openid printed\n%s\nwant\n%s", found, out)
	}
	if b.User.UnionID == "" {
		t.Fatal("no unionid for bob")
	}
	found, errs := r.ok("find", "--unionid", b.User.UnionID, "--platform", "baidu")
	if want := r.admin("/admin/v1/users?unionid=" + b.User.UnionID + "&platform=baidu"); found != want || readUser(t, found).ID != b.User.ID {
		t.Fatalf("find by unionid printed\n%s\nthe admin API answers\n%s", found, want)
	}
	if n := len(auditLines(t, errs)); n != 0 {
		t.Errorf("users find wrote %d audit lines", n)
	}
	r.bindPhone(b, "bob")
	found, _ = r.ok("find", "--phone", "+86 "+r.em.PhoneNumber("bob"))
	if want := r.admin("/admin/v1/users?phone=" + r.em.PhoneNumber("bob")); found != want || readUser(t, found).ID != b.User.ID {
		t.Fatalf("find by phone printed\n%s\nthe admin API answers\n%s", found, want)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"get", "nobody"}, 1, "users get: no such user: nobody"},
		{[]string{"get", "not an id!"}, 1, "no such user"},
		{[]string{"find", "--app", "w", "--openid", "nobody"}, 1, "users find: no such user"},
		{[]string{"find", "--unionid", "nobody", "--platform", "wechat"}, 1, "users find: no such user"},
		{[]string{"find"}, 2, "give one of: app and openid, unionid and platform, or phone"},
		{[]string{"find", "--app", "w"}, 2, "give one of"},
		{[]string{"find", "--app", "w", "--openid", a.User.OpenID, "--unionid", "u"}, 2, "give one of"},
		{[]string{"find", "--app", "nope", "--openid", a.User.OpenID}, 2, "--app names no configured app"},
		{[]string{"find", "--unionid", "u", "--platform", "feishu"}, 2, "must be wechat, baidu, douyin, qq, kuaishou or alipay"},
		{[]string{"find", "--phone", "13800000000", "--app", "w"}, 2, "give one of"},
		{[]string{"find", "--phone", "12"}, 2, "phone must be a number"},
		{[]string{"find", "--phone", "13900000001"}, 1, "users find: no such user"},
		{[]string{"find", "--app", "w", "--openid", a.User.OpenID, a.User.ID}, 2, "unexpected argument"},
	} {
		code, out, errs := r.users(tc.args[0], tc.args[1:]...)
		if code != tc.code || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
}

func TestUsersRevokeBlockUnblock(t *testing.T) {
	r := newUsersRig(t)
	a1 := r.mustLogin("w", "alice")
	a2 := r.mustLogin("w", "alice")
	other := r.mustLogin("w", "carol")
	id := a1.User.ID

	out, errs := r.ok("revoke", id)
	if out != "{\"revoked\":2}\n" {
		t.Fatalf("users revoke printed %q", out)
	}
	wantAudit(t, errs, "revoke", id, "ok", "")
	for _, tok := range []*session.Tokens{a1, a2} {
		if _, err := r.check(tok); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
			t.Fatalf("a revoked session checks: %v", err)
		}
	}
	if uid, err := r.check(other); err != nil || uid != other.User.ID {
		t.Fatalf("another user's session: %q %v", uid, err)
	}

	// A revoked user may log in again; a blocked one may not.
	a3 := r.mustLogin("w", "alice")
	out, errs = r.ok("block", "--reason", "chargeback fraud", id)
	if out != "{\"revoked\":1}\n" {
		t.Fatalf("users block printed %q", out)
	}
	wantAudit(t, errs, "block", id, "ok", "")
	if strings.Contains(errs, "chargeback") {
		t.Error("the audit line carries the reason; the admin API's does not")
	}
	if _, err := r.check(a3); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
		t.Fatalf("a blocked user's session checks: %v", err)
	}
	if _, err := r.login("w", "alice"); mplogin.ErrorCode(err) != mplogin.CodeUserBlocked {
		t.Fatalf("a blocked user's login: %v", err)
	}
	got, _ := r.ok("get", id)
	if u := readUser(t, got); !u.Blocked || u.BlockedReason != "chargeback fraud" {
		t.Fatalf("blocked user: %+v", u)
	}
	if code, _, errs := r.users("block", "--reason", strings.Repeat("x", session.MaxBlockReason+1), id); code != 2 ||
		!strings.Contains(errs, "at most 500 characters") {
		t.Errorf("too long a reason: exit %d: %s", code, errs)
	}

	out, errs = r.ok("unblock", id)
	if out != "" {
		t.Fatalf("users unblock printed %q; the admin API answers 204", out)
	}
	wantAudit(t, errs, "unblock", id, "ok", "")
	if tok := r.mustLogin("w", "alice"); tok.User.ID != id {
		t.Fatalf("after the unblock, alice logs in as %s, want %s", tok.User.ID, id)
	}
}

func TestUsersDelete(t *testing.T) {
	r := newUsersRig(t)
	a := r.mustLogin("w", "alice")
	out, errs := r.ok("delete", a.User.ID)
	if out != "" {
		t.Fatalf("users delete printed %q; the admin API answers 204", out)
	}
	wantAudit(t, errs, "erase", a.User.ID, "ok", "")
	if code, _, errs := r.users("get", a.User.ID); code != 1 || !strings.Contains(errs, "no such user") {
		t.Fatalf("get of an erased user: exit %d: %s", code, errs)
	}
	if _, err := r.check(a); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
		t.Fatalf("an erased user's session checks: %v", err)
	}
	if again := r.mustLogin("w", "alice"); !again.User.Created || again.User.ID == a.User.ID {
		t.Fatalf("a login after the erasure: %+v, want a new user", again.User)
	}
}

func TestUsersMerge(t *testing.T) {
	r := newUsersRig(t)
	a := r.mustLogin("w", "alice")
	b := r.mustLogin("b", "alice-on-baidu")
	out, errs := r.ok("merge", "--from", b.User.ID, a.User.ID)
	wantAudit(t, errs, "merge", a.User.ID, "ok", b.User.ID)
	if want := r.admin("/admin/v1/users/" + a.User.ID); out != want {
		t.Fatalf("users merge printed\n%s\nthe admin API answers\n%s", out, want)
	}
	u := readUser(t, out)
	var got []string
	for _, i := range u.Identities {
		got = append(got, i.Platform+":"+i.OpenID)
	}
	slices.Sort(got)
	if want := []string{"baidu:" + b.User.OpenID, "wechat:" + a.User.OpenID}; !slices.Equal(got, want) {
		t.Fatalf("merged identities %v, want %v", got, want)
	}
	if code, _, errs := r.users("get", b.User.ID); code != 1 || !strings.Contains(errs, "no such user") {
		t.Fatalf("get of the merged-away user: exit %d: %s", code, errs)
	}
	// The moved session works, and now names the user it moved to.
	if uid, err := r.check(b); err != nil || uid != a.User.ID {
		t.Fatalf("the moved session checks as %q, %v; want %s", uid, err, a.User.ID)
	}

	code, _, errs := r.users("merge", "--from", a.User.ID, a.User.ID)
	if code != 2 || !strings.Contains(errs, "cannot be merged into itself") {
		t.Errorf("merge into itself: exit %d: %s", code, errs)
	}
	wantAudit(t, errs, "merge", a.User.ID, "invalid_request", a.User.ID)
}

// An unknown user: exit 1 and "no such user", and for an action the audit
// line says not_found, as the admin API's does.
func TestUsersUnknownUser(t *testing.T) {
	r := newUsersRig(t)
	a := r.mustLogin("w", "alice")
	for _, tc := range []struct {
		args           []string
		action, from   string
		user, wantText string
	}{
		{[]string{"get", "nobody"}, "", "", "nobody", "users get: no such user: nobody"},
		{[]string{"revoke", "nobody"}, "revoke", "", "nobody", "users revoke: no such user: nobody"},
		{[]string{"block", "--reason", "r", "nobody"}, "block", "", "nobody", "users block: no such user: nobody"},
		{[]string{"unblock", "nobody"}, "unblock", "", "nobody", "users unblock: no such user: nobody"},
		{[]string{"delete", "nobody"}, "erase", "", "nobody", "users delete: no such user: nobody"},
		{[]string{"delete", "not/an/id"}, "erase", "", "not/an/id", "users delete: no such user: not/an/id"},
		{[]string{"merge", "--from", "nobody", a.User.ID}, "merge", "nobody", a.User.ID, "no such user: " + a.User.ID + " or nobody"},
		{[]string{"merge", "--from", a.User.ID, "nobody"}, "merge", a.User.ID, "nobody", "no such user: nobody or " + a.User.ID},
	} {
		code, out, errs := r.users(tc.args[0], tc.args[1:]...)
		if code != 1 || out != "" || !strings.Contains(errs, tc.wantText) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errs, tc.wantText)
			continue
		}
		if tc.action == "" {
			if n := len(auditLines(t, errs)); n != 0 {
				t.Errorf("%v: %d audit lines", tc.args, n)
			}
			continue
		}
		wantAudit(t, errs, tc.action, tc.user, "not_found", tc.from)
	}
	// Nothing happened to alice.
	if uid, err := r.check(a); err != nil || uid != a.User.ID {
		t.Fatalf("alice's session: %q %v", uid, err)
	}
}

func TestUsersUsage(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "none.yaml") // never read: usage is checked first
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"users"}, "users takes a subcommand"},
		{[]string{"users", "list"}, `unknown subcommand "list"`},
		{[]string{"users", "get", "--config", cfg}, "the user id is missing"},
		{[]string{"users", "get", "--config", cfg, "a", "b"}, `unexpected argument "b"`},
		{[]string{"users", "get", "a"}, "--config is required"},
		{[]string{"users", "get", "--nope", "a"}, "flag provided but not defined: -nope"},
		{[]string{"users", "block", "--config", cfg, "a", "--reason", "r"}, "flags go before the user id: mplogin users block --config FILE [--reason TEXT] USER_ID"},
		{[]string{"users", "revoke", "--config", cfg, "--reason", "r", "a"}, "flag provided but not defined: -reason"},
		{[]string{"users", "merge", "--config", cfg, "a"}, "--from is required"},
		{[]string{"users", "find", "--config", cfg, "--platform", "feishu"}, "must be wechat, baidu, douyin, qq, kuaishou or alipay"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tc.args, &stdout, &stderr, nil)
		if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"users", "block", "-h"}, &stdout, &stderr, nil); code != 0 ||
		!strings.Contains(stderr.String(), "-reason") {
		t.Errorf("users block -h: exit %d: %s", code, stderr.String())
	}
	if code := run(t.Context(), []string{"users", "get", "--config", cfg, "a"}, &stdout, &stderr, nil); code != 1 ||
		!strings.Contains(stderr.String(), "none.yaml") {
		t.Errorf("a missing configuration: exit %d: %s", code, stderr.String())
	}
}

// With SQLite, a command on the file of a running service stops at once:
// the service's caches could not see its writes.
func TestUsersStoreInUse(t *testing.T) {
	r := newUsersRig(t)
	a := r.mustLogin("w", "alice")
	srv := r.open()
	defer srv.Close()
	code, out, errs := r.users("revoke", a.User.ID)
	if code != 1 || out != "" || !strings.Contains(errs, "database in use") {
		t.Fatalf("users revoke beside a running service: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if uid, err := srv.Sessions().Check(t.Context(), a.AccessToken.Reveal()); err != nil || uid.User.ID != a.User.ID {
		t.Fatalf("alice's session: %v %v", uid, err)
	}
}
