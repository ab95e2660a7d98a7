package alipay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/platform"
)

// gatewayStringToSign is the gateway's side of the request signature,
// written here independently of the package: every parameter except sign,
// with a non-empty value, sorted, name=value joined by &, values raw.
func gatewayStringToSign(t *testing.T, form url.Values) string {
	t.Helper()
	var names []string
	for name, values := range form {
		if len(values) != 1 {
			t.Fatalf("parameter %s sent %d times", name, len(values))
		}
		if name != "sign" && values[0] != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + "=" + form.Get(name)
	}
	return strings.Join(parts, "&")
}

// fakeGateway checks each request as Alipay's gateway would (form body,
// app signature) and answers with answer, or with the gateway's
// isv.invalid-signature when the signature does not verify.
type fakeGateway struct {
	t      *testing.T
	appKey *rsa.PublicKey
	answer []byte
	// badSig, when set, is the answer to a request whose signature does
	// not verify; otherwise such a request fails the test.
	badSig []byte
	mu     sync.Mutex
	forms  []url.Values
	signed []string
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	if r.Method != http.MethodPost || r.URL.Path != PathGateway || r.URL.RawQuery != "" || err != nil ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded;charset=utf-8" {
		g.t.Errorf("sent %s %s?%s %q: %v", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), err)
	}
	content := gatewayStringToSign(g.t, form)
	g.mu.Lock()
	g.forms = append(g.forms, form)
	g.signed = append(g.signed, content)
	g.mu.Unlock()
	sig, err := base64.StdEncoding.DecodeString(form.Get("sign"))
	h := sha256.Sum256([]byte(content))
	if err != nil || rsa.VerifyPKCS1v15(g.appKey, crypto.SHA256, h[:], sig) != nil {
		if g.badSig != nil {
			_, _ = w.Write(g.badSig)
			return
		}
		g.t.Errorf("request signature does not verify over %q", content)
	}
	_, _ = w.Write(g.answer)
}

func TestRequestSignedAsTheGatewayChecks(t *testing.T) {
	k := loadKeys(t)
	codes := []string{
		testCode,
		// Characters the form encodes and the string to sign keeps raw.
		"a+b/c=d e%20f&g=h;中文",
	}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			g := &fakeGateway{t: t, appKey: &k.app.PublicKey, answer: readFile(t, "token_user_id.json")}
			srv := httptest.NewServer(g)
			defer srv.Close()
			login, err := newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: code})
			if err != nil || login.OpenID != goldenUserID {
				t.Fatalf("%+v %v", login, err)
			}
			form := g.forms[0]
			want := map[string]string{
				"app_id": testAppID, "method": "alipay.system.oauth.token", "format": "JSON", "charset": "utf-8",
				"sign_type": "RSA2", "version": "1.0", "grant_type": "authorization_code", "code": code,
			}
			for name, v := range want {
				if form.Get(name) != v {
					t.Errorf("%s = %q, want %q", name, form.Get(name), v)
				}
			}
			if len(form) != len(want)+2 { // and timestamp, sign
				t.Errorf("form %v", form)
			}
			if _, err := time.Parse(timestampLayout, form.Get("timestamp")); err != nil {
				t.Errorf("timestamp %q: %v", form.Get("timestamp"), err)
			}
			if !strings.Contains(g.signed[0], "&code="+code+"&") || !strings.Contains(g.signed[0], "&sign_type=RSA2&") {
				t.Errorf("string to sign %q", g.signed[0])
			}
		})
	}
}

// The string to sign for a fixed time, spelled out: names in byte order,
// sign_type in, the timestamp in Beijing time whatever the clock's zone.
// PKCS #1 v1.5 signatures are deterministic, so the signature is fixed too.
func TestRequestStringToSignSpelledOut(t *testing.T) {
	k := loadKeys(t)
	g := &fakeGateway{t: t, appKey: &k.app.PublicKey, answer: readFile(t, "token_open_id.json")}
	srv := httptest.NewServer(g)
	defer srv.Close()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EDT", -4*60*60)
	}
	at := time.Date(2024, 5, 13, 5, 49, 20, 0, ny) // 17:49:20 in Beijing
	c := newClient(t, srv.URL, func(cfg *Config) { cfg.Now = func() time.Time { return at } })
	if _, err := c.Exchange(ctx(t), platform.ExchangeRequest{Code: testCode}); err != nil {
		t.Fatal(err)
	}
	want := "app_id=" + testAppID + "&charset=utf-8&code=" + testCode + "&format=JSON&grant_type=authorization_code" +
		"&method=alipay.system.oauth.token&sign_type=RSA2&timestamp=2024-05-13 17:49:20&version=1.0"
	if g.signed[0] != want {
		t.Fatalf("string to sign\n got %s\nwant %s", g.signed[0], want)
	}
	if got := g.forms[0].Get("sign"); got != signB64(t, k.app, want) {
		t.Fatalf("sign %s", got)
	}
	if got := signContent(map[string]string{"b": "2", "a": "1", "sign": "x", "empty": "", "B": "0"}); got != "B=0&a=1&b=2" {
		t.Fatalf("signContent %q", got)
	}
}

// A gateway that refuses our signature answers isv.invalid-signature in
// the method node, signed: bad credentials, the code out of the message.
func TestRequestSignedWithAnotherKey(t *testing.T) {
	k := loadKeys(t)
	g := &fakeGateway{t: t, appKey: &k.app.PublicKey, answer: readFile(t, "token_user_id.json"),
		badSig: readFile(t, "node_40002_invalid_signature.json")}
	srv := httptest.NewServer(g)
	defer srv.Close()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv.URL, func(cfg *Config) { cfg.PrivateKey = other })
	_, err = c.Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
	if kind, code := kindCode(t, err); kind != platform.KindBadCredentials || code != "40002" {
		t.Fatalf("got %v", err)
	}
	testutil.NoLeak(t, err, testCode)
}
