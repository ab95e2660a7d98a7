package baidu_test

import (
	"context"
	"fmt"
	"net/http"
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

// Look up a user's unionid, here against a stand-in for Baidu's openapi
// host. The access token is the app's own (FetchAccessToken), normally
// supplied by the token manager, which fetches a new one and calls again
// when the lookup fails with platform.KindTokenInvalid.
func ExampleClient_UnionID() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") != "24.app-token" {
			fmt.Fprint(w, `{"error_code":111,"error_msg":"Access token expired"}`)
			return
		}
		fmt.Fprint(w, `{"errno":0,"errmsg":"succ","data":{"unionid":"St6PVMkgMDeh92Uq2EWfx6H"}}`)
	}))
	defer srv.Close()

	c, err := baidu.New(baidu.Config{AppKey: "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7", AppSecret: secret.New("app-secret"), Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.UnionID(context.Background(), secret.New("24.app-token"), "l214zFqNrEuIEnp6m7Y01sw8yj"))
	_, err = c.UnionID(context.Background(), secret.New("24.old-token"), "l214zFqNrEuIEnp6m7Y01sw8yj")
	fmt.Println(platform.KindOf(err))
	// Output:
	// St6PVMkgMDeh92Uq2EWfx6H <nil>
	// token_invalid
}

// A third-party platform looks up the unionid of a user of a smart program
// that authorised it, with that program's authorizer ("45.") token.
func ExampleTPClient_UnionID() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errno":0,"msg":"success","data":{"union_id":"Srn8jbRVFTFMRdV2KTJfmSE"}}`)
	}))
	defer srv.Close()

	tp, err := baidu.NewTP(baidu.TPConfig{AppKey: "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7",
		AuthorizerToken: platform.StaticToken(secret.New("45.authorizer-token")), Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	fmt.Println(tp.UnionID(context.Background(), secret.New("45.authorizer-token"), "l214zFqNrEuIEnp6m7Y01sw8yj"))
	// Output: Srn8jbRVFTFMRdV2KTJfmSE <nil>
}
