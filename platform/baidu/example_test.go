package baidu_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/baidu"
	"github.com/mplogin/mplogin/secret"
)

// Exchange a swan.login() code on spapi, here against the emulator.
func ExampleClient_Exchange() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	const appKey = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	c, err := baidu.New(baidu.Config{AppKey: appKey, AppSecret: secret.New("app-secret"), Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	code, _ := em.Login("baidu", appKey, "alice", "")
	login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	if err != nil {
		panic(err)
	}
	fmt.Println(login.OpenID == em.OpenID("baidu", appKey, "alice"), len(login.SessionKey.Reveal()))

	_, err = c.Exchange(context.Background(), platform.ExchangeRequest{Code: "not-a-code"})
	fmt.Println(platform.KindOf(err))
	// Output:
	// true 32
	// invalid_code
}
