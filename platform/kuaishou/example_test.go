package kuaishou_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/kuaishou"
	"github.com/mplogin/mplogin/secret"
)

// Exchange a ks.login() code, here against the emulator in-process.
func ExampleClient_Exchange() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, err := kuaishou.New(kuaishou.Config{AppID: "ks671234567890", AppSecret: secret.New("app-secret"), Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	code, _ := em.Login("kuaishou", "ks671234567890", "alice", "")
	login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	if err != nil {
		panic(err)
	}
	fmt.Println(login.OpenID == em.OpenID("kuaishou", "ks671234567890", "alice"), login.SessionKey, login.UnionID == "")

	// The code is single use; Kuaishou's refusal is an invalid code.
	_, err = c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	fmt.Println(platform.KindOf(err))
	// Output:
	// true [redacted] true
	// invalid_code
}

// Fetch the app's access token. It lives 48 hours, and a fetch leaves the
// previous token valid.
func ExampleClient_FetchAccessToken() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, _ := kuaishou.New(kuaishou.Config{AppID: "ks671234567890", AppSecret: secret.New("app-secret"), Endpoint: srv.URL})
	tok, life, err := c.FetchAccessToken(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(tok, life)
	// Output: [redacted] 48h0m0s
}
