package qq_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/qq"
	"github.com/mplogin/mplogin/secret"
)

// Exchange a qq.login() code, here against the emulator in-process.
func ExampleClient_Exchange() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, err := qq.New(qq.Config{AppID: "1101234567", Secret: secret.New("app-secret"), Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	code, _ := em.Login("qq", "1101234567", "alice", "")
	login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	if err != nil {
		panic(err)
	}
	fmt.Println(login.OpenID == em.OpenID("qq", "1101234567", "alice"), login.SessionKey)

	// The code is single use.
	_, err = c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	fmt.Println(platform.KindOf(err))
	// Output:
	// true [redacted]
	// code_used
}

// Fetch the app's access token. Each fetch retires the previous token 5
// minutes later: fetch in one place, e.g. one accesstoken.Manager.
func ExampleClient_FetchAccessToken() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, _ := qq.New(qq.Config{AppID: "1101234567", Secret: secret.New("app-secret"), Endpoint: srv.URL})
	tok, life, err := c.FetchAccessToken(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(tok, life)
	// Output: [redacted] 2h0m0s
}
