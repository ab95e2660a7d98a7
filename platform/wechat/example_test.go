package wechat_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
)

// Exchange a wx.login() code, here against the emulator in-process.
func ExampleClient_Exchange() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, err := wechat.New(wechat.Config{AppID: "wx0123456789abcdef", Secret: secret.New("app-secret"), Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	code, _ := em.Login("wechat", "wx0123456789abcdef", "alice", "")
	login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	if err != nil {
		panic(err)
	}
	fmt.Println(login.OpenID == em.OpenID("wechat", "wx0123456789abcdef", "alice"), login.SessionKey)

	// The code is single use.
	_, err = c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	fmt.Println(platform.KindOf(err))
	// Output:
	// true [redacted]
	// code_used
}

// The signature checksession and resetusersessionkey send: HMAC-SHA256 keyed
// with the session_key string itself, over the empty payload
// (docs/platforms/wechat.md, "Session-key signature" and "Test vectors").
func ExampleSessionSignature() {
	fmt.Println(wechat.SessionSignature(secret.New("o0q0otL8aEzpcZL/FT9WsQ=="), ""))
	// Output: 46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128
}

// Check a stored session key, here against a stand-in for WeChat that
// reports it replaced by a newer login.
func ExampleClient_CheckSession() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":87009,"errmsg":"invalid signature, rid: 1"}`)
	}))
	defer srv.Close()

	c, _ := wechat.New(wechat.Config{AppID: "wx0123456789abcdef", Secret: secret.New("app-secret"), Endpoint: srv.URL})
	// The access token comes from the app's token manager (accesstoken.Manager.Do).
	valid, err := c.CheckSession(context.Background(), secret.New("access-token"), "oUser", secret.New("o0q0otL8aEzpcZL/FT9WsQ=="))
	fmt.Println(valid, err)
	// Output: false <nil>
}

// Trade a getPhoneNumber button code for the number, here against a
// stand-in for WeChat. A Phone prints without its number; read the fields.
func ExampleClient_PhoneNumber() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000",`+
			`"countryCode":86,"watermark":{"timestamp":1637744274,"appid":"wx0123456789abcdef"}}}`)
	}))
	defer srv.Close()

	c, _ := wechat.New(wechat.Config{AppID: "wx0123456789abcdef", Secret: secret.New("app-secret"), Endpoint: srv.URL})
	phone, err := c.PhoneNumber(context.Background(), secret.New("access-token"), "oUser", "phone-code-from-the-button")
	if err != nil {
		panic(err)
	}
	fmt.Println(phone.PurePhoneNumber, phone.CountryCode)
	fmt.Println(phone)
	// Output:
	// 13800138000 86
	// wechat.Phone{CountryCode:86 PhoneNumber:[redacted]}
}
