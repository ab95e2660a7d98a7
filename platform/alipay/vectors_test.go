package alipay

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
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
