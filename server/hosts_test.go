package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/douyin"
	"github.com/mplogin/mplogin/platform/kuaishou"
	"github.com/mplogin/mplogin/platform/qq"
	"github.com/mplogin/mplogin/secret"
)

const (
	ttAppID    = "tt07e3715e98c9aac0"
	ttSecret   = "douyin-secret-for-tests"
	qqAppID    = "1109000001"
	qqSecret   = "qq-secret-for-tests"
	ksAppID    = "ks671599294546520767"
	ksSecret   = "kuaishou-secret-for-tests"
	ttApp      = "d"
	qqApp      = "q"
	ksApp      = "k"
	rsaKeyBits = 2048
)

// newerHosts are a Douyin app (with its RSA key for phone codes), a QQ app
// and a Kuaishou app, with the ids of hostCases.
func newerHosts(t *testing.T) []config.App {
	return newerHostsWith(t, hostCases)
}

// newerHostsWith is newerHosts with the app ids of cases.
func newerHostsWith(t *testing.T, cases []hostCase) []config.App {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := secret.New(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	return []config.App{
		{Name: ttApp, Flavor: platform.FlavorDouyin, AppID: cases[0].appid, Secret: secret.New(ttSecret), RSAPrivateKey: pemKey,
			UserdataMaxAge: config.DefaultUserdataMaxAge},
		{Name: qqApp, Flavor: platform.FlavorQQ, AppID: cases[1].appid, Secret: secret.New(qqSecret), UserdataMaxAge: config.DefaultUserdataMaxAge},
		{Name: ksApp, Flavor: platform.FlavorKuaishou, AppID: cases[2].appid, AppSecret: secret.New(ksSecret)},
	}
}

// hostCase is one of the newer hosts as a test drives it.
type hostCase struct {
	family    string
	app       string
	appid     string
	tokenPath string
	phoneCode bool // a phone code (Douyin's get_phonenumber_info)
	phoneData bool // an encrypted phone payload
}

var hostCases = []hostCase{
	{"douyin", ttApp, ttAppID, douyin.PathToken, true, true},
	{"qq", qqApp, qqAppID, qq.PathToken, false, false},
	{"kuaishou", ksApp, ksAppID, kuaishou.PathToken, false, true},
}

// TestNewerHosts: on Douyin, QQ and Kuaishou, a login, a session check,
// a refresh, a profile decrypt and the phone number (where the host has
// one) work through the service against the emulator.
func TestNewerHosts(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		r := newRig(t, withConfig(c.applyForPhones), withApps(newerHosts(t)...))
		for _, h := range hostCases {
			t.Run(h.family, func(t *testing.T) {
				user := fmt.Sprintf("%s-%s-%d", h.family, c.name, time.Now().UnixNano())
				login := r.login(t, h.family, h.appid, h.app, user)
				if login.User.OpenID != r.em.OpenID(h.family, h.appid, user) {
					t.Fatalf("openid %q, want the emulator's %q", login.User.OpenID, r.em.OpenID(h.family, h.appid, user))
				}
				status, v := r.call(t, "GET", "/v1/session", login.AccessToken, "")
				if status != 200 || v["active"] != true || v["app"] != h.app {
					t.Fatalf("check: %d %v", status, v)
				}
				status, v = r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+login.RefreshToken+`"}`)
				if status != 200 {
					t.Fatalf("refresh: %d %v", status, v)
				}
				access := tokensOf(t, v).AccessToken

				d, err := r.em.UserData(h.family, h.appid, user, emulator.KindUserInfo)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := json.Marshal(map[string]string{"encrypted_data": d.EncryptedData, "iv": d.IV, "raw_data": d.RawData, "signature": d.Signature})
				status, v = r.call(t, "POST", "/v1/userdata/decrypt", access, string(body))
				if data, _ := v["data"].(map[string]any); status != 200 || data == nil || data["nickName"] == nil {
					t.Fatalf("decrypt the profile: %d %v", status, v)
				}
				if h.phoneData {
					d, err := r.em.UserData(h.family, h.appid, user, emulator.KindPhone)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := json.Marshal(map[string]string{"encrypted_data": d.EncryptedData, "iv": d.IV})
					status, v = r.call(t, "POST", "/v1/phone", access, string(body))
					if status != 200 || v["phone_number"] != r.em.PhoneNumber(user) {
						t.Fatalf("phone payload: %d %v", status, v)
					}
				}
				if h.phoneCode {
					pc, err := r.em.DouyinPhoneCode(h.appid, user)
					if err != nil {
						t.Fatal(err)
					}
					status, v = r.call(t, "POST", "/v1/phone", access, `{"code":"`+pc+`"}`)
					if status != 200 || v["phone_number"] != r.em.PhoneNumber(user) || v["linked"] != false {
						t.Fatalf("phone code: %d %v", status, v)
					}
				} else {
					status, v = r.call(t, "POST", "/v1/phone", access, `{"code":"pc"}`)
					if status != 400 || v["error"] != "invalid_request" {
						t.Fatalf("a phone code where the host has none: %d %v", status, v)
					}
				}
			})
		}
		t.Run("douyin anonymous", func(t *testing.T) {
			user := fmt.Sprintf("anon-%s-%d", c.name, time.Now().UnixNano())
			_, anon, err := r.em.LoginDouyin(ttAppID, user, true)
			if err != nil {
				t.Fatal(err)
			}
			status, v := r.call(t, "POST", "/v1/login", "", `{"app":"d","anonymous_code":"`+anon+`"}`)
			first := tokensOf(t, v)
			if u, _ := v["user"].(map[string]any); status != 200 || u["anonymous"] != true || first.User.OpenID != "anonymous:"+r.em.AnonymousOpenID(ttAppID, user) {
				t.Fatalf("anonymous login: %d %v", status, v)
			}
			d, err := r.em.UserData("douyin", ttAppID, user, emulator.KindUserInfo)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(map[string]string{"encrypted_data": d.EncryptedData, "iv": d.IV})
			if status, v := r.call(t, "POST", "/v1/userdata/decrypt", first.AccessToken, string(body)); status != 200 {
				t.Fatalf("decrypt on the anonymous session: %d %v", status, v)
			}
			code, anon, err := r.em.LoginDouyin(ttAppID, user, false)
			if err != nil {
				t.Fatal(err)
			}
			status, v = r.call(t, "POST", "/v1/login", "", `{"app":"d","code":"`+code+`","anonymous_code":"`+anon+`"}`)
			up := tokensOf(t, v)
			if u, _ := v["user"].(map[string]any); status != 200 || up.User.ID != first.User.ID || u["previous_user_id"] != first.User.ID || u["anonymous"] != nil {
				t.Fatalf("upgrade: %d %v; want user %s, previous_user_id the same", status, v, first.User.ID)
			}
			if status, _ := r.call(t, "GET", "/v1/session", first.AccessToken, ""); status != 200 {
				t.Fatalf("the anonymous session after the upgrade: %d", status)
			}
		})
	}, "sqlite", "postgres+redis")
}

// TestNewerHostsTokenOneFetch: two instances on one store, asked at once
// for a host's access token that neither has, fetch it once between them.
func TestNewerHostsTokenOneFetch(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		// App ids of this run alone: the store keeps the tokens of earlier
		// runs, which would need no fetch.
		cases := slices.Clone(hostCases)
		n := time.Now().UnixNano()
		for i := range cases {
			cases[i].appid = fmt.Sprintf("%s%d", cases[i].appid[:4], n)
		}
		apps := newerHostsWith(t, cases)
		a := newRig(t, withConfig(c.apply), withApps(apps...))
		b := newRig(t, withConfig(c.apply), withApps(apps...), withEmulatorOf(a))
		for _, h := range cases {
			t.Run(h.family, func(t *testing.T) {
				before := a.em.Stats()[h.tokenPath]
				key := accesstoken.Key(platform.Family(h.family), h.appid)
				var wg sync.WaitGroup
				errs := make(chan error, 40)
				toks := make(chan string, 40)
				for i := range 40 {
					r := a
					if i%2 == 1 {
						r = b
					}
					wg.Go(func() {
						errs <- r.srv.Tokens().Source(key).Do(t.Context(), func(_ context.Context, tok secret.String) error {
							toks <- tok.Reveal()
							return nil
						})
					})
				}
				wg.Wait()
				close(errs)
				close(toks)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				seen := map[string]bool{}
				for tok := range toks {
					seen[tok] = true
				}
				if n := a.em.Stats()[h.tokenPath] - before; n != 1 || len(seen) != 1 {
					t.Fatalf("%d fetches of %s and %d tokens for 40 callers on two instances; want 1 and 1", n, h.tokenPath, len(seen))
				}
			})
		}
	}, "postgres+redis")
}
