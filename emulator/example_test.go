package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// Using the emulator in process: the mini program logs alice in, the server
// under test exchanges the code at the emulator's URL.
func Example() {
	emu := emulator.New(emulator.Config{
		Apps: []emulator.App{{Family: "wechat", AppID: "wx0123456789abcdef", Secret: "s3cret"}},
	})
	srv := httptest.NewServer(emu)
	defer srv.Close()

	code, err := emu.Login("wechat", "wx0123456789abcdef", "alice", "") // the client's wx.login
	if err != nil {
		panic(err)
	}

	// What the server under test does, with srv.URL in place of https://api.weixin.qq.com.
	q := url.Values{"appid": {"wx0123456789abcdef"}, "secret": {"s3cret"}, "js_code": {code}, "grant_type": {"authorization_code"}}
	resp, err := http.Get(srv.URL + "/sns/jscode2session?" + q.Encode())
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var session struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&session); err != nil {
		panic(err)
	}
	key, _ := emu.SessionKey("wechat", "wx0123456789abcdef", "alice")

	fmt.Println("openid:", session.OpenID)
	fmt.Println("same as OpenID:", session.OpenID == emu.OpenID("wechat", "wx0123456789abcdef", "alice"))
	fmt.Println("session key is alice's current one:", session.SessionKey == key)

	// A fault rule: the next exchange sees WeChat's "system busy".
	emu.SetFaults(emulator.Fault{Path: "/sns/jscode2session", Errcode: -1, Times: 1})
	fmt.Println("calls so far:", emu.Stats()["/sns/jscode2session"])
	// Output:
	// openid: oRgiVFxRLH-2QlfClJHUWIvtfnN3
	// same as OpenID: true
	// session key is alice's current one: true
	// calls so far: 1
}

// User data for a logged-in user, encrypted with the session key the user
// holds, as the mini program would post it to its server.
func ExampleEmulator_UserData() {
	emu := emulator.New(emulator.Config{})
	srv := httptest.NewServer(emu)
	defer srv.Close()

	code, _ := emu.Login("wechat", "wx0123456789abcdef", "alice", "")
	q := url.Values{"appid": {"wx0123456789abcdef"}, "secret": {"s"}, "js_code": {code}, "grant_type": {"authorization_code"}}
	resp, err := http.Get(srv.URL + "/sns/jscode2session?" + q.Encode())
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	d, err := emu.UserData("wechat", "wx0123456789abcdef", "alice", emulator.KindPhone)
	if err != nil {
		panic(err)
	}
	key, _ := emu.SessionKey("wechat", "wx0123456789abcdef", "alice")
	plain, err := userdata.DecryptWeChat(secret.New(key), d.EncryptedData, d.IV, userdata.WeChatOptions{AppID: "wx0123456789abcdef"})
	if err != nil {
		panic(err)
	}
	var phone struct {
		PurePhoneNumber string `json:"purePhoneNumber"`
	}
	_ = json.Unmarshal(plain, &phone)
	fmt.Println(phone.PurePhoneNumber == emu.PhoneNumber("alice"), phone.PurePhoneNumber)
	// Output: true 16863340097
}
