package wechat_test

import (
	"context"
	"fmt"
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
