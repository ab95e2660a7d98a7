package alipay

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mplogin/mplogin/secret"
)

// encryptContent is Alipay's side of content encryption, written out here:
// PKCS #7 to whole blocks, AES-128-CBC under key with an all-zero iv,
// standard base64. pad, when not 0, replaces every pad byte (to make bad
// padding).
func encryptContent(t testing.TB, keyB64 string, plain []byte, pad byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append([]byte(string(plain)), make([]byte, n)...)
	for i := len(plain); i < len(buf); i++ {
		buf[i] = byte(n)
		if pad != 0 {
			buf[i] = pad
		}
	}
	var iv [aes.BlockSize]byte
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf)
}

func phonePlain(mobile string) []byte {
	return []byte(`{"code":"10000","msg":"Success","mobile":"` + mobile + `"}`)
}

// phoneResponse is what my.getPhoneNumber gives for plain, signed by the
// test's Alipay key over the quoted ciphertext.
func phoneResponse(t testing.TB, plain []byte) PhoneResponse {
	t.Helper()
	ct := encryptContent(t, testAESKey, plain, 0)
	return PhoneResponse{Response: ct, Sign: signB64(t, loadKeys(t).alipay, `"`+ct+`"`),
		SignType: "RSA2", EncryptType: "AES", Charset: "UTF-8"}
}

// phoneJSON is the payload's string form, as the mini program sends it.
func phoneJSON(p PhoneResponse) string {
	b, _ := json.Marshal(map[string]string{"response": p.Response, "sign": p.Sign, "sign_type": p.SignType,
		"encrypt_type": p.EncryptType, "charset": p.Charset})
	return string(b)
}

func TestDecryptPhone(t *testing.T) {
	c := newClient(t, "")
	p := phoneResponse(t, phonePlain(testMobile))
	parsed, err := ParsePhoneResponse(phoneJSON(p))
	if err != nil || parsed != p {
		t.Fatalf("%+v %v", parsed, err)
	}
	if mobile, err := c.DecryptPhone(parsed); err != nil || mobile != testMobile {
		t.Fatalf("%q %v", mobile, err)
	}
	// Empty sign_type, encrypt_type and charset are Alipay's defaults.
	if mobile, err := c.DecryptPhone(PhoneResponse{Response: p.Response, Sign: p.Sign}); err != nil || mobile != testMobile {
		t.Fatalf("%q %v", mobile, err)
	}
	// Other members of the plaintext are ignored; a number in another
	// format is kept as it is.
	q := phoneResponse(t, []byte(`{"msg":"Success","code":"10000","mobile":"+852-6123 4567","extra":{"a":[1]}}`))
	if mobile, err := c.DecryptPhone(q); err != nil || mobile != "+852-6123 4567" {
		t.Fatalf("%q %v", mobile, err)
	}
}

// Every failure is ErrPhone itself, whatever the cause, with no number.
func TestDecryptPhoneFailures(t *testing.T) {
	k := loadKeys(t)
	good := phoneResponse(t, phonePlain(testMobile))
	signed := func(ct string) PhoneResponse {
		return PhoneResponse{Response: ct, Sign: signB64(t, k.alipay, `"`+ct+`"`)}
	}
	plainJSON := string(phonePlain(testMobile))
	flipped := []byte(good.Response)
	flipped[3] ^= 'A' ^ 'B'
	cases := map[string]struct {
		p    PhoneResponse
		opts []func(*Config)
	}{
		"no AES key":             {good, []func(*Config){func(c *Config) { c.AESKey = secret.String{} }}},
		"another AES key":        {good, []func(*Config){func(c *Config) { c.AESKey = secret.New("TDftre9FpItr46e9BVNJcw==") }}},
		"empty":                  {PhoneResponse{}, nil},
		"not encrypted":          {PhoneResponse{Response: plainJSON, Sign: signB64(t, k.alipay, plainJSON)}, nil},
		"not encrypted, quoted":  {PhoneResponse{Response: plainJSON, Sign: signB64(t, k.alipay, `"`+plainJSON+`"`)}, nil},
		"sign_type RSA":          {PhoneResponse{Response: good.Response, Sign: good.Sign, SignType: "RSA"}, nil},
		"encrypt_type other":     {PhoneResponse{Response: good.Response, Sign: good.Sign, EncryptType: "SM4"}, nil},
		"charset GBK":            {PhoneResponse{Response: good.Response, Sign: good.Sign, Charset: "GBK"}, nil},
		"no sign":                {PhoneResponse{Response: good.Response}, nil},
		"sign not base64":        {PhoneResponse{Response: good.Response, Sign: "!!"}, nil},
		"signed by the app":      {PhoneResponse{Response: good.Response, Sign: signB64(t, k.app, `"`+good.Response+`"`)}, nil},
		"signed unquoted":        {PhoneResponse{Response: good.Response, Sign: signB64(t, k.alipay, good.Response)}, nil},
		"ciphertext altered":     {PhoneResponse{Response: string(flipped), Sign: good.Sign}, nil},
		"not base64, signed":     {signed("AAAA$AAA"), nil},
		"escaped slash, signed":  {signed(`AAAA\/AAAAAAAAAAAAAAAAAAA`), nil},
		"not whole blocks":       {signed(base64.StdEncoding.EncodeToString(make([]byte, 20))), nil},
		"unpadded base64":        {signed(strings.TrimRight(good.Response, "=")), nil},
		"bad padding":            {signed(encryptContent(t, testAESKey, phonePlain(testMobile), 17)), nil},
		"zero padding":           {signed(encryptContent(t, testAESKey, phonePlain(testMobile)[:48], 0xff)), nil},
		"failure plaintext":      {phoneResponse(t, []byte(`{"code":"40006","msg":"Insufficient Permissions","sub_code":"isv.insufficient-isv-permissions"}`)), nil},
		"no code":                {phoneResponse(t, []byte(`{"msg":"Success","mobile":"13800138000"}`)), nil},
		"numeric code":           {phoneResponse(t, []byte(`{"code":10000,"mobile":"13800138000"}`)), nil},
		"empty mobile":           {phoneResponse(t, phonePlain("")), nil},
		"mobile a number":        {phoneResponse(t, []byte(`{"code":"10000","mobile":13800138000}`)), nil},
		"mobile twice":           {phoneResponse(t, []byte(`{"code":"10000","mobile":"13800138000","mobile":"13900139000"}`)), nil},
		"mobile too long":        {phoneResponse(t, phonePlain(strings.Repeat("1", maxMobileLen+1))), nil},
		"mobile with a newline":  {phoneResponse(t, phonePlain(`138\n0013800`)), nil},
		"plaintext not JSON":     {phoneResponse(t, []byte("test1234567")), nil},
		"plaintext JSON array":   {phoneResponse(t, []byte(`["13800138000"]`)), nil},
		"ciphertext over bounds": {signed(encryptContent(t, testAESKey, make([]byte, maxPhoneCiphertext), 0)), nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, "", tc.opts...)
			mobile, err := c.DecryptPhone(tc.p)
			if err != ErrPhone || mobile != "" {
				t.Fatalf("(%q, %v), want ErrPhone", mobile, err)
			}
		})
	}
}

// countingBlock counts the decryptions a cipher.Block is asked for.
type countingBlock struct {
	cipher.Block
	calls *atomic.Int32
}

func (b countingBlock) Decrypt(dst, src []byte) {
	b.calls.Add(1)
	b.Block.Decrypt(dst, src)
}

// Nothing reaches the cipher before the signature verifies: a client that
// can submit ciphertexts learns nothing from how they decrypt.
func TestDecryptPhoneVerifiesFirst(t *testing.T) {
	c := newClient(t, "")
	var calls atomic.Int32
	c.phone = countingBlock{Block: c.phone, calls: &calls}
	good := phoneResponse(t, phonePlain(testMobile))
	other := phoneResponse(t, phonePlain("13900139000"))
	for _, p := range []PhoneResponse{
		{Response: good.Response, Sign: other.Sign},
		{Response: other.Response, Sign: good.Sign},
		{Response: encryptContent(t, testAESKey, phonePlain(testMobile), 17), Sign: good.Sign},
	} {
		if _, err := c.DecryptPhone(p); err != ErrPhone {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d block decryptions before a signature verified", n)
	}
	if mobile, err := c.DecryptPhone(good); err != nil || mobile != testMobile || calls.Load() == 0 {
		t.Fatalf("%q %v", mobile, err)
	}
}

func TestParsePhoneResponse(t *testing.T) {
	p, err := ParsePhoneResponse(` {"response":"AAAA","sign":"c2ln","sign_type":"RSA2","encrypt_type":"AES","charset":"UTF-8","other":[1]} `)
	if err != nil || p != (PhoneResponse{"AAAA", "c2ln", "RSA2", "AES", "UTF-8"}) {
		t.Fatalf("%+v %v", p, err)
	}
	if p, err := ParsePhoneResponse(`{"response":"A\/B"}`); err != nil || p.Response != "A/B" {
		t.Fatalf("%+v %v", p, err)
	}
	for _, s := range []string{
		"", "null", `"x"`, `{"response":"AAAA"`, `{"response":"AAAA","response":"BBBB"}`,
		`{"response":{"code":"10000","mobile":"13800138000"}}`, `{"response":1}`, `{"sign":true}`,
		`{"response":"` + strings.Repeat("A", maxPhoneJSON) + `"}`,
	} {
		p, err := ParsePhoneResponse(s)
		if !errors.Is(err, ErrPhone) || p != (PhoneResponse{}) {
			t.Errorf("%.40q: %+v %v", s, p, err)
		}
		if err != nil && strings.Contains(err.Error(), "13800138000") {
			t.Errorf("number in error: %v", err)
		}
	}
}
