package alipay

import (
	"crypto/aes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/secret"
)

// Published answers signed by Alipay (testdata/README.md says where each
// comes from), taken apart and verified by the same path as every answer.
func TestPublishedSignedAnswers(t *testing.T) {
	cases := []struct {
		file, node, key string
		wantContent     string
	}{
		// A payment answer, as a Go SDK's test gives its node and sign.
		{"vector_gopay_trade_pay.json", "alipay_trade_pay_response", "gopay_alipay_public_key.txt",
			`{"code":"10000","msg":"Success","buyer_logon_id":"854***@qq.com","buyer_pay_amount":"0.01",` +
				`"buyer_user_id":"2088102363632794","fund_bill_list":[{"amount":"0.01","fund_channel":"PCREDIT"}],` +
				`"gmt_payment":"2019-08-29 20:14:05","invoice_amount":"0.01","out_trade_no":"GZ201901301040361012",` +
				`"point_amount":"0.00","receipt_amount":"0.01","total_amount":"0.01","trade_no":"2019082922001432790585537960"}`},
		// A whole answer of Alipay's own Node SDK's test.
		{"vector_nodejs_file_upload.json", "alipay_open_file_upload_response", "nodejs_alipay_public_key.pem",
			`{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"}`},
		// A real sandbox error inside the method node: errors are signed
		// too, and the content is UTF-8 as sent.
		{"vector_nodejs_stable_40003.json", "alipay_security_risk_content_analyze_response", "nodejs_stable_rsa2_public_key.txt",
			`{"code":"40003","msg":"Insufficient Conditions","sub_code":"isv.decryption-error-unknown","sub_msg":"解密出错, 未知错误"}`},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			body := readFile(t, tc.file)
			pub := loadPublic(t, tc.key)
			a, err := extractSigned(body, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if a.node != tc.node || string(a.content) != tc.wantContent {
				t.Fatalf("extracted %s %s", a.node, a.content)
			}
			if err := verify(pub, a.content, a.sign); err != nil {
				t.Fatal(err)
			}
			// One byte changed anywhere in the node breaks it.
			for i := range a.content {
				c := []byte(string(a.content))
				c[i] ^= 1
				if verify(pub, c, a.sign) == nil {
					t.Fatalf("verifies with byte %d changed", i)
				}
			}
			// Looked for under another node name: error_response is absent,
			// so there is nothing to verify.
			if _, err := extractSigned(body, "alipay_system_oauth_token_response"); err != errNoNode {
				t.Fatalf("other node: %v", err)
			}
		})
	}
}

// Published AES vectors: Alipay's content encryption is AES-128-CBC with
// an all-zero iv and PKCS #7.
func TestPublishedAESVectors(t *testing.T) {
	open := func(t *testing.T, key, ct string) string {
		t.Helper()
		k, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			t.Fatal(err)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			t.Fatal(err)
		}
		buf, n, padOK, ok := openContent(block, ct)
		if !ok || padOK != 1 {
			t.Fatalf("ok %v pad %d", ok, padOK)
		}
		return string(buf[:n])
	}
	// Alipay's EasySDK test key and ciphertext.
	if got := open(t, "aa4BtZ4tspm2wnXLb1ThQA==", "ILpoMowjIQjfYMR847rnFQ=="); got != "test1234567" {
		t.Fatalf("got %q", got)
	}
	// A phone-number plaintext from a Go SDK's test.
	const key5, ct5 = "TDftre9FpItr46e9BVNJcw==", "MkvuiIZsGOC8S038cu/JIpoRKnF+ZFjoIRGf5d/K4+ctYjCtb/eEkwgrdB5TeH/93bxff1Ylb+SE+UGStlpvcg=="
	if got := open(t, key5, ct5); got != `{"code":"10000","msg":"Success","mobile":"13247120685"}` {
		t.Fatalf("got %q", got)
	}

	// The same ciphertext through DecryptPhone: the published vector has
	// no signature, so the test's Alipay key signs the quoted ciphertext.
	k := loadKeys(t)
	c := newClient(t, "", func(cfg *Config) { cfg.AESKey = secret.New(key5) })
	p := PhoneResponse{Response: ct5, Sign: signB64(t, k.alipay, `"`+ct5+`"`), SignType: "RSA2", EncryptType: "AES", Charset: "UTF-8"}
	if mobile, err := c.DecryptPhone(p); err != nil || mobile != "13247120685" {
		t.Fatalf("%q %v", mobile, err)
	}
	// Signed without the quotes, it is refused.
	p.Sign = signB64(t, k.alipay, ct5)
	if _, err := c.DecryptPhone(p); err != ErrPhone {
		t.Fatalf("unquoted: %v", err)
	}
	// The EasySDK plaintext is no phone answer.
	c = newClient(t, "", func(cfg *Config) { cfg.AESKey = secret.New("aa4BtZ4tspm2wnXLb1ThQA==") })
	p = PhoneResponse{Response: "ILpoMowjIQjfYMR847rnFQ==", Sign: signB64(t, k.alipay, `"ILpoMowjIQjfYMR847rnFQ=="`)}
	if mobile, err := c.DecryptPhone(p); err != ErrPhone || mobile != "" {
		t.Fatalf("%q %v", mobile, err)
	}
}

// The published keys load whatever their form: PEM, or the bare base64
// the console shows, with or without line breaks.
func TestParsePublicKey(t *testing.T) {
	bare := strings.TrimSpace(string(readFile(t, "gopay_alipay_public_key.txt")))
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&loadKeys(t).alipay.PublicKey)})
	for _, s := range []string{bare, bare[:64] + "\n" + bare[64:] + "\n", string(readFile(t, "nodejs_alipay_public_key.pem")), string(pkcs1)} {
		if _, err := ParsePublicKey(s); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("not DER")),
		string(readFile(t, "test_app_key.pem"))} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Fatalf("%q accepted", s)
		}
	}
}
