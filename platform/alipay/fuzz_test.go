package alipay

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/platform"
)

// seedAnswers adds every answer in testdata.
func seedAnswers(f *testing.F, add func(body []byte)) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			add(readFile(f, e.Name()))
		}
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"sign":"AAAA"}`, `{"error_response":{},"sign":"AAAA"}`,
		`{"alipay_system_oauth_token_response":{"user_id":"1"},"sign":"AAAA"}`, `{"a":[[[{"b":"\u00e9\/"}]]],"sign":null}`,
		`{"error_response":{"code":"40002","sub_code":"isv.code-invalid","sub_msg":"CODE"},"sign":"AAAA"}`} {
		add([]byte(s))
	}
}

// topLevel is encoding/json's reading of a body as one object: its
// members' raw values, and whether it is one object whose names are all
// distinct.
func topLevel(body []byte) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		if _, dup := m[name]; dup {
			return nil, false
		}
		m[name] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return m, true
}

// depth is the deepest nesting of objects and arrays in valid JSON.
func depth(b []byte) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

// The extractor agrees with encoding/json: what it takes is one valid
// object with distinct names, the content is the node's raw value as
// encoding/json sees it, and the sign is the sign member's string. And
// what encoding/json reads as such an answer, the extractor takes.
func FuzzExtractSigned(f *testing.F) {
	seedAnswers(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := extractSigned(body, nodeOAuthToken)
		m, oneObject := topLevel(body)
		if err == nil {
			if !oneObject || !json.Valid(body) {
				t.Fatalf("took %q, which is not one object with distinct names", body)
			}
			raw, ok := m[a.node]
			if !ok || !bytes.Equal(raw, a.content) || (a.node == nodeError && m[nodeOAuthToken] != nil) {
				t.Fatalf("content %q, encoding/json has %q for %s", a.content, raw, a.node)
			}
			var sig string
			if json.Unmarshal(m[nameSign], &sig) != nil {
				t.Fatalf("sign %q is not a string", m[nameSign])
			}
			if want, err := base64.StdEncoding.DecodeString(sig); err != nil || !bytes.Equal(want, a.sign) {
				t.Fatalf("sign %x from %q", a.sign, m[nameSign])
			}
			return
		}
		if !oneObject || depth(body) > maxDepth {
			return
		}
		node, ok := m[nodeOAuthToken]
		if !ok {
			node, ok = m[nodeError]
		}
		var sig string
		if !ok || node[0] != '{' || json.Unmarshal(m[nameSign], &sig) != nil || sig == "" {
			return
		}
		if _, berr := base64.StdEncoding.DecodeString(sig); berr != nil {
			return
		}
		t.Fatalf("refused %q: %v", body, err)
	})
}

// Any answer gives either a login or a *platform.Error, never a panic. A
// login comes only from an answer whose node, as encoding/json reads it,
// verifies under Alipay's key; no error carries the code.
func FuzzParseOAuthToken(f *testing.F) {
	k := loadKeys(f)
	pub := &k.alipay.PublicKey
	seedAnswers(f, func(b []byte) { f.Add(200, b) })
	f.Add(500, readFile(f, "error_40002_code_invalid.json"))
	f.Add(502, readFile(f, "token_user_id.json"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := parseOAuthToken(&hostcall.Response{Status: status, Body: body}, pub, "CODE")
		if err == nil {
			m, ok := topLevel(body)
			var sig string
			if !ok || login == nil || login.OpenID == "" || status/100 != 2 || json.Unmarshal(m[nameSign], &sig) != nil {
				t.Fatalf("login %+v from %q", login, body)
			}
			s, _ := base64.StdEncoding.DecodeString(sig)
			h := sha256.Sum256(m[nodeOAuthToken])
			if rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], s) != nil {
				t.Fatalf("login from an answer that does not verify: %q", body)
			}
			return
		}
		var pe *platform.Error
		if !errors.As(err, &pe) || login != nil {
			t.Fatalf("(%+v, %v)", login, err)
		}
		if strings.Contains(pe.Message, "CODE") || strings.Contains(err.Error(), "CODE") {
			t.Fatalf("code in error: %v", err)
		}
	})
}

// Any payload gives a number or ErrPhone itself, never a panic; a number
// only from a ciphertext whose quoted form verifies under Alipay's key.
func FuzzDecryptPhone(f *testing.F) {
	k := loadKeys(f)
	c := newClient(f, "")
	good := phoneResponse(f, phonePlain(testMobile))
	f.Add(phoneJSON(good))
	f.Add(phoneJSON(PhoneResponse{Response: good.Response, Sign: good.Sign}))
	f.Add(phoneJSON(phoneResponse(f, []byte(`{"code":"40006","msg":"Insufficient Permissions"}`))))
	f.Add(phoneJSON(phoneResponse(f, []byte(`{"code":"10000","mobile":""}`))))
	ct := encryptContent(f, testAESKey, phonePlain(testMobile), 17)
	f.Add(phoneJSON(PhoneResponse{Response: ct, Sign: signB64(f, k.alipay, `"`+ct+`"`)}))
	for _, s := range []string{``, `{}`, `{"response":"{\"code\":\"10000\"}","sign":"AAAA"}`, `{"response":"AAAA","sign":"AAAA"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		p, err := ParsePhoneResponse(payload)
		if err != nil {
			if !errors.Is(err, ErrPhone) {
				t.Fatalf("parse error %v does not wrap ErrPhone", err)
			}
			return
		}
		mobile, err := c.DecryptPhone(p)
		if err != nil {
			if err != ErrPhone || mobile != "" {
				t.Fatalf("(%q, %v)", mobile, err)
			}
			return
		}
		s, _ := base64.StdEncoding.DecodeString(p.Sign)
		h := sha256.Sum256([]byte(`"` + p.Response + `"`))
		if mobile == "" || rsa.VerifyPKCS1v15(&k.alipay.PublicKey, crypto.SHA256, h[:], s) != nil {
			t.Fatalf("number %q from %q", mobile, payload)
		}
	})
}
