package server_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
)

// TestLinkByPhoneAcrossHosts: silent login first, phone later, never a
// duplicate. Alice logs in on WeChat and binds her phone with a phone
// code, logs in on Baidu (a new user: unionids never cross hosts) and
// binds the same phone with a Baidu payload: one user, two identities,
// found by her number; her Baidu session keeps working.
func TestLinkByPhoneAcrossHosts(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		r := newRig(t, withAdmin(), withConfig(func(cfg *config.Config) {
			c.applyForPhones(cfg)
			cfg.LinkByPhone = true
		}))
		alice := "alice-link-" + time.Now().Format("150405.000000000")
		wx := r.login(t, "wechat", wxAppID, "w", alice)
		pc, err := r.em.PhoneCode(wxAppID, alice)
		if err != nil {
			t.Fatal(err)
		}
		status, v := r.call(t, "POST", "/v1/phone", wx.AccessToken, `{"code":"`+pc+`"}`)
		if status != 200 || v["linked"] != false || v["user_id"] != wx.User.ID || v["phone_number"] != r.em.PhoneNumber(alice) {
			t.Fatalf("WeChat phone: %d %v", status, v)
		}

		bd := r.login(t, "baidu", bdAppKey, "b", alice)
		if bd.User.Created == nil || !*bd.User.Created || bd.User.ID == wx.User.ID {
			t.Fatalf("Baidu login: user %s; want a new user", bd.User.ID)
		}
		d, err := r.em.UserData("baidu", bdAppKey, alice, emulator.KindPhone)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"encrypted_data": d.EncryptedData, "iv": d.IV})
		status, v = r.call(t, "POST", "/v1/phone", bd.AccessToken, string(body))
		if status != 200 || v["linked"] != true || v["user_id"] != wx.User.ID {
			t.Fatalf("Baidu phone: %d %v; want linked to %s", status, v, wx.User.ID)
		}

		status, me := r.call(t, "GET", "/v1/me", bd.AccessToken, "")
		if ids, _ := me["identities"].([]any); status != 200 || me["id"] != wx.User.ID || len(ids) != 2 {
			t.Fatalf("GET /v1/me on the Baidu session: %d %v; want %s with two identities", status, me, wx.User.ID)
		}
		number := r.em.PhoneNumber(alice)
		for _, q := range []string{number, url.QueryEscape("+86 " + number), "+86" + number} {
			status, u := r.adm(t, "GET", "/admin/v1/users?phone="+q, "")
			if ids, _ := u["identities"].([]any); status != 200 || u["id"] != wx.User.ID || len(ids) != 2 {
				t.Fatalf("find by phone %q: %d %v", q, status, u)
			}
		}
		if status, v := r.adm(t, "GET", "/admin/v1/users/"+bd.User.ID, ""); status != 404 {
			t.Fatalf("the Baidu user after the link: %d %v, want 404", status, v)
		}
		again := r.login(t, "baidu", bdAppKey, "b", alice)
		if again.User.ID != wx.User.ID || again.User.Created == nil || *again.User.Created {
			t.Fatalf("next Baidu login: user %s; want %s, not created", again.User.ID, wx.User.ID)
		}
		if status, v := r.adm(t, "GET", "/admin/v1/users?phone=13", ""); status != 400 || v["error"] != "invalid_request" {
			t.Fatalf("find by a short number: %d %v", status, v)
		}
		if status, v := r.adm(t, "GET", "/admin/v1/users?phone=13900000000", ""); status != 404 {
			t.Fatalf("find by an unknown number: %d %v", status, v)
		}
	})
}
