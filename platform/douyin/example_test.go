package douyin_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/douyin"
	"github.com/mplogin/mplogin/secret"
)

// Exchange what tt.login gave, here against the emulator in-process.
func ExampleClient_Exchange() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, err := douyin.New(douyin.Config{AppID: "tt07e3715e98c9aac0", Secret: secret.New("app-secret"), Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	code, anonymousCode, _ := em.LoginDouyin("tt07e3715e98c9aac0", "alice", false)
	login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code, AnonymousCode: anonymousCode})
	if err != nil {
		panic(err)
	}
	fmt.Println(login.OpenID == em.OpenID("douyin", "tt07e3715e98c9aac0", "alice"), login.AnonymousOpenID != "", login.SessionKey)

	// A user who is not logged in has only an anonymous code.
	_, anonymousCode, _ = em.LoginDouyin("tt07e3715e98c9aac0", "bob", true)
	login, err = c.Exchange(context.Background(), platform.ExchangeRequest{AnonymousCode: anonymousCode})
	fmt.Println(login.OpenID == "", login.AnonymousOpenID == em.AnonymousOpenID("tt07e3715e98c9aac0", "bob"), err)

	// Codes are single use; Douyin says "bad code" for a used one too.
	_, err = c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
	fmt.Println(platform.KindOf(err))
	// Output:
	// true true [redacted]
	// true true <nil>
	// invalid_code
}

// Trade a getPhoneNumber button code for the number with the app's private
// key, here against the emulator, which holds the public key.
func ExampleClient_PhoneNumber() {
	b, _ := os.ReadFile("testdata/app_key.pem")
	block, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	priv := k.(*rsa.PrivateKey)
	em := emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: platform.FamilyDouyin, AppID: "tt07e3715e98c9aac0", Secret: "app-secret", RSAPublicKey: &priv.PublicKey},
	}})
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, _ := douyin.New(douyin.Config{AppID: "tt07e3715e98c9aac0", Secret: secret.New("app-secret"), Endpoint: srv.URL, PrivateKey: priv})
	// The access token comes from the app's token manager (accesstoken.Manager.Do).
	tok, _, _ := c.FetchAccessToken(context.Background())
	code, _ := em.DouyinPhoneCode("tt07e3715e98c9aac0", "alice")
	phone, err := c.PhoneNumber(context.Background(), tok, code)
	if err != nil {
		panic(err)
	}
	fmt.Println(phone.PurePhoneNumber == em.PhoneNumber("alice"), phone.CountryCode)
	fmt.Println(phone)
	// Output:
	// true 86
	// douyin.Phone{CountryCode:86 PhoneNumber:[redacted]}
}
