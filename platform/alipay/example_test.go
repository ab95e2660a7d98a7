package alipay_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/alipay"
	"github.com/mplogin/mplogin/secret"
)

// testKey reads one of the test-only private keys in testdata.
func testKey(file string) *rsa.PrivateKey {
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*rsa.PrivateKey)
}

// gateway stands in for Alipay's: it answers the code "good-code" once
// with a user in the switch-over phase (both ids), and any other code
// with isv.code-invalid, each answer signed over its node's bytes.
func gateway(alipayKey *rsa.PrivateKey) http.Handler {
	var used atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, node := "error_response", `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"授权码code无效"}`
		if r.FormValue("code") == "good-code" && used.CompareAndSwap(false, true) {
			name, node = "alipay_system_oauth_token_response",
				`{"access_token":"authusrB…","expires_in":1296000,"open_id":"083luGU2dXc7v0Jb2kQm9sXyZpLrT4nHfE6wA1iB5o8z",`+
					`"re_expires_in":2592000,"refresh_token":"authusrB…","user_id":"2088102150477652"}`
		}
		h := sha256.Sum256([]byte(node))
		sig, _ := rsa.SignPKCS1v15(nil, alipayKey, crypto.SHA256, h[:])
		fmt.Fprintf(w, `{"%s":%s,"sign":"%s"}`, name, node, base64.StdEncoding.EncodeToString(sig))
	})
}

// Exchange the code my.getAuthCode gave, here against a stand-in gateway.
func ExampleClient_Exchange() {
	appKey, alipayKey := testKey("test_app_key.pem"), testKey("test_alipay_key.pem")
	srv := httptest.NewServer(gateway(alipayKey))
	defer srv.Close()

	c, err := alipay.New(alipay.Config{AppID: "2021004100000001", PrivateKey: appKey,
		AlipayPublicKey: &alipayKey.PublicKey, Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "good-code"})
	if err != nil {
		panic(err)
	}
	// The open_id is the user's id in this app; the user_id, the same
	// person in every app, is the unionid.
	fmt.Println(login.OpenID, login.UnionID, login.SessionKey.IsZero())

	// Codes are single use; Alipay says the same for a used code as for an
	// unknown one.
	_, err = c.Exchange(context.Background(), platform.ExchangeRequest{Code: "good-code"})
	fmt.Println(platform.KindOf(err))
	// Output:
	// 083luGU2dXc7v0Jb2kQm9sXyZpLrT4nHfE6wA1iB5o8z 2088102150477652 true
	// invalid_code
}

// Open what my.getPhoneNumber gave the mini program: the signature is
// checked with the Alipay public key, then the number is decrypted with
// the app's AES key.
func ExampleClient_DecryptPhone() {
	c, err := alipay.New(alipay.Config{AppID: "2021004100000001", PrivateKey: testKey("test_app_key.pem"),
		AlipayPublicKey: &testKey("test_alipay_key.pem").PublicKey, AESKey: secret.New("aa4BtZ4tspm2wnXLb1ThQA==")})
	if err != nil {
		panic(err)
	}
	payload, _ := os.ReadFile("testdata/phone_payload.json") // res.response, as the mini program sent it
	p, err := alipay.ParsePhoneResponse(string(payload))
	if err != nil {
		panic(err)
	}
	mobile, err := c.DecryptPhone(p)
	fmt.Println(mobile, err)

	// Anything altered is the one error, whatever was altered.
	p.Response = "A" + p.Response[1:]
	_, err = c.DecryptPhone(p)
	fmt.Println(err == alipay.ErrPhone)
	// Output:
	// 13800138000 <nil>
	// true
}

// The Alipay public key as Alipay's console shows it: bare base64, no PEM
// armour. PEM is read as well.
func ExampleParsePublicKey() {
	text, _ := os.ReadFile("testdata/nodejs_stable_rsa2_public_key.txt")
	k, err := alipay.ParsePublicKey(string(text))
	if err != nil {
		panic(err)
	}
	fmt.Println(k.N.BitLen())
	// Output:
	// 2048
}
