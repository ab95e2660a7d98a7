package emulator

import (
	"encoding/base64"
	"testing"
)

// Alipay's own SDK test vector for its content encryption: AES-128-CBC,
// zero iv, PKCS #7.
func TestAlipayEncryptVector(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString("aa4BtZ4tspm2wnXLb1ThQA==")
	ct, err := alipayEncrypt(key, []byte("test1234567"))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(ct); got != "ILpoMowjIQjfYMR847rnFQ==" {
		t.Errorf("ciphertext %s", got)
	}
}

func TestJavaObject(t *testing.T) {
	var o javaObject
	o.str("url", `https://a.b/c "q" \ 授权`+"\n\x01\xff")
	o.num("n", -12)
	want := `{"url":"https:\/\/a.b\/c \"q\" \\ 授权\n\u0001` + "\uFFFD" + `","n":-12}`
	if got := string(o.close()); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var empty javaObject
	if got := string(empty.close()); got != "{}" {
		t.Errorf("empty object %s", got)
	}
}

// The string to sign keeps sign_type, drops sign and empty values, sorts by
// name and does not encode values.
func TestAlipaySignContent(t *testing.T) {
	p := map[string][]string{"sign": {"x"}, "sign_type": {"RSA2"}, "app_id": {"1"}, "empty": {""},
		"timestamp": {"2025-01-01 00:00:00"}, "biz": {`{"a":"b&c"}`}, "a_b": {"1"}, "a": {"first", "second"}}
	want := `a=first&a_b=1&app_id=1&biz={"a":"b&c"}&sign_type=RSA2&timestamp=2025-01-01 00:00:00`
	if got := alipaySignContent(p); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
