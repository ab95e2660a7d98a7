package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// alipayKeys are an app's key pair, the gateway's key and an AES key.
type alipayKeys struct {
	app, gateway *rsa.PrivateKey
	aes          string
}

func newAlipayKeys(t *testing.T) alipayKeys {
	t.Helper()
	var k alipayKeys
	var err error
	if k.app, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.gateway, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	k.aes = base64.StdEncoding.EncodeToString(b)
	return k
}

// alipayApp is an Alipay app named name with id appID whose answers are
// checked with gatewayPub.
func (k alipayKeys) alipayApp(t *testing.T, name, appID string, gatewayPub *rsa.PublicKey) config.App {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.app)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(gatewayPub)
	if err != nil {
		t.Fatal(err)
	}
	return config.App{Name: name, Flavor: platform.FlavorAlipay, AppID: appID,
		PrivateKey:      secret.New(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))),
		AlipayPublicKey: base64.StdEncoding.EncodeToString(pub), AESKey: secret.New(k.aes)}
}

// TestAlipay: on SQLite and on PostgreSQL with Redis, in each of Alipay's
// identity modes, a login, a session check, a refresh and the phone number
// work through the service against the emulator's signed gateway; an app
// switching modes keeps its users.
func TestAlipay(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		k := newAlipayKeys(t)
		n := time.Now().UnixNano()
		ids := map[string]string{
			"user_id": fmt.Sprintf("2021%012d", n%1e12), "both": fmt.Sprintf("2022%012d", n%1e12), "open_id": fmt.Sprintf("2023%012d", n%1e12),
		}
		modes := map[string]string{ids["user_id"]: "user_id", ids["both"]: "both", ids["open_id"]: "open_id"}
		apps := []config.App{k.alipayApp(t, "ali-user", ids["user_id"], &k.gateway.PublicKey),
			k.alipayApp(t, "ali-both", ids["both"], &k.gateway.PublicKey), k.alipayApp(t, "ali-open", ids["open_id"], &k.gateway.PublicKey)}
		r := newRig(t, withConfig(c.applyForPhones), withApps(apps...), withAlipay(k.gateway, modes))
		user := fmt.Sprintf("ali-%s-%d", c.name, n)
		for _, m := range []struct{ mode, app string }{{"user_id", "ali-user"}, {"both", "ali-both"}, {"open_id", "ali-open"}} {
			t.Run(m.mode, func(t *testing.T) {
				login := r.login(t, "alipay", ids[m.mode], m.app, user)
				wantOpen := r.em.OpenID("alipay", ids[m.mode], user)
				if m.mode == "user_id" {
					wantOpen = r.em.AlipayUserID(user)
				}
				if login.User.OpenID != wantOpen {
					t.Fatalf("openid %q, want %q", login.User.OpenID, wantOpen)
				}
				if wantUnion := r.em.AlipayUserID(user); (m.mode != "open_id") != (login.User.UnionID == wantUnion) {
					t.Fatalf("unionid %q in %s mode (user_id %s)", login.User.UnionID, m.mode, wantUnion)
				}
				status, v := r.call(t, "GET", "/v1/session", login.AccessToken, "")
				if status != 200 || v["app"] != m.app {
					t.Fatalf("check: %d %v", status, v)
				}
				status, v = r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+login.RefreshToken+`"}`)
				if status != 200 {
					t.Fatalf("refresh: %d %v", status, v)
				}
				access := tokensOf(t, v).AccessToken
				phone, err := r.em.AlipayPhone(ids[m.mode], user)
				if err != nil {
					t.Fatal(err)
				}
				status, v = r.call(t, "POST", "/v1/phone", access, phone)
				if status != 200 || v["phone_number"] != r.em.PhoneNumber(user) {
					t.Fatalf("phone: %d %v", status, v)
				}
				// The answer altered: one byte of the response changes.
				forged := strings.Replace(phone, `"response":"`, `"response":"A`, 1)
				if status, v := r.call(t, "POST", "/v1/phone", access, forged); status != 422 || v["error"] != "decrypt_failed" {
					t.Fatalf("an altered phone answer: %d %v", status, v)
				}
			})
		}
		// The same person in the three apps: the user_id and both-mode apps
		// share the user_id, so they are one user; the open_id app is a
		// user of its own (its answers carry no user_id).
		a := r.login(t, "alipay", ids["user_id"], "ali-user", user)
		b := r.login(t, "alipay", ids["both"], "ali-both", user)
		o := r.login(t, "alipay", ids["open_id"], "ali-open", user)
		if a.User.ID != b.User.ID || o.User.ID == a.User.ID {
			t.Fatalf("users by mode: user_id %s, both %s, open_id %s; want the first two one user", a.User.ID, b.User.ID, o.User.ID)
		}
	}, "sqlite", "postgres+redis")
}

// TestAlipayForgedAnswer: an answer signed with another key, or altered
// on the way, logs nobody in.
func TestAlipayForgedAnswer(t *testing.T) {
	k := newAlipayKeys(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const appID = "2021000000000009"
	// The app trusts another gateway key than the one that signs.
	r := newRig(t, withApps(k.alipayApp(t, "ali", appID, &other.PublicKey)), withAlipay(k.gateway, nil))
	code, err := r.em.Login("alipay", appID, "mallory", "")
	if err != nil {
		t.Fatal(err)
	}
	status, v := r.call(t, "POST", "/v1/login", "", `{"app":"ali","code":"`+code+`"}`)
	if status != 502 || v["error"] != "platform_error" {
		t.Fatalf("an answer under another key: %d %v, want 502 platform_error", status, v)
	}

	// A proxy that rewrites the open_id in the signed answer.
	k2 := newAlipayKeys(t)
	var target string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		resp, err := http.Post(target+req.URL.Path, req.Header.Get("Content-Type"), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		out = bytes.Replace(out, []byte(`"open_id":"0`), []byte(`"open_id":"1`), 1)
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		_, _ = w.Write(out)
	}))
	t.Cleanup(proxy.Close)
	app := k2.alipayApp(t, "ali2", appID, &k2.gateway.PublicKey)
	app.Endpoint = proxy.URL
	r2 := newRig(t, withAlipay(k2.gateway, nil), withConfig(func(c *config.Config) { c.Apps = append(c.Apps, app) }),
		withEmulatorApps(emulator.App{Family: platform.FamilyAlipay, AppID: appID, AlipayPublicKey: &k2.app.PublicKey}))
	target = r2.emURL
	code, err = r2.em.Login("alipay", appID, "mallory", "")
	if err != nil {
		t.Fatal(err)
	}
	status, v = r2.call(t, "POST", "/v1/login", "", `{"app":"ali2","code":"`+code+`"}`)
	if status != 502 || v["error"] != "platform_error" {
		t.Fatalf("an altered answer: %d %v, want 502 platform_error", status, v)
	}
	if n := strings.Count(r2.logs.String(), `"msg":"login"`); n != 0 {
		t.Fatalf("%d logins logged", n)
	}
}
