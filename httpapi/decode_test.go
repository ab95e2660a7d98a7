package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/mplogin/mplogin"
)

// BenchmarkDecodeLogin decodes the body of a typical login, the hot path's
// only JSON, Content-Type check included.
func BenchmarkDecodeLogin(b *testing.B) {
	body := []byte(`{"app":"shop-wechat","code":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}`)
	rd := bytes.NewReader(body)
	hr := httptest.NewRequest("POST", "/v1/login", nil)
	hr.Header.Set("Content-Type", "application/json")
	req := &request{r: hr}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		hr.Body = io.NopCloser(rd)
		var in loginRequest
		if err := decode(req, &in); err != nil || *in.Code != "0a1b2c3d4e5f60718293a4b5c6d7e8f9" {
			b.Fatal(err)
		}
	}
}

// known takes exactly the keys the fields' tags name, so that what the
// strict pass accepts is what encoding/json fills in.
func TestKnownKeysAreTheTags(t *testing.T) {
	for _, v := range []body{&loginRequest{}, &tokenRequest{}, &decryptRequest{}, &phoneRequest{}} {
		rt := reflect.TypeOf(v).Elem()
		for i := range rt.NumField() {
			tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
			if !v.known([]byte(tag)) || v.known([]byte(strings.ToUpper(tag))) || v.known([]byte(rt.Field(i).Name)) {
				t.Errorf("%s: %q is not known, or another spelling is", rt.Name(), tag)
			}
		}
		if v.known(nil) || v.known([]byte("x")) {
			t.Errorf("%s knows keys it has no field for", rt.Name())
		}
	}
}

// FuzzDecodeBody: whatever the body, the strict decoder does not panic and
// refuses with invalid_request. It accepts exactly the bodies that
// encoding/json accepts and that hold one object whose keys are each a
// field's tag, spelled exactly, once; and it reads the values encoding/json
// reads: no two parsers see two requests.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"app":"shop-wechat","code":"0a1b2c3d"}`,
		`{"app":"a","app":"b"}`,
		`{"APP":"a","code":"x"}`,
		`{"\u0061pp":"a","code":null}`,
		`{"grant_type":"refresh_token","refresh_token":"mpr_x"}`,
		"{\"refresh_to\u212aen\":\"x\"}",
		`{"encrypted_data":"AAAA","iv":"AAAA","raw_data":"{}","signature":"x"}`,
		`{"encrypted_data":{"a":1,"a":2},"iv":"x"}`,
		`{"code":"x","encrypted_data":"","iv":""}`,
		`{"code":"x"} {}`,
		`{"code":"x",}`,
		`{"code":"\ud800"}`,
		"{\"code\":\"\xff\"}",
		`[1]`, `1e999`, `null`, ``, ` `, `{`, `{"code"`, `{"code":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		agree[loginRequest](t, body)
		agree[tokenRequest](t, body)
		agree[decryptRequest](t, body)
		agree[phoneRequest](t, body)
	})
}

func agree[T any, P interface {
	*T
	body
}](t *testing.T, b []byte) {
	t.Helper()
	var strict, std T
	err := decodeJSON(b, P(&strict))
	if err != nil && mplogin.ErrorCode(err) != mplogin.CodeInvalidRequest {
		t.Fatalf("%T %q: %v, want invalid_request", strict, b, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	stdOK := json.Valid(b) && dec.Decode(&std) == nil
	if want := stdOK && exactKeys[T](b); (err == nil) != want {
		t.Fatalf("%T %q: strict says %v, want accepted %v", strict, b, err, want)
	}
	if err == nil && !reflect.DeepEqual(strict, std) {
		t.Fatalf("%T %q: strict %+v, encoding/json %+v", strict, b, strict, std)
	}
}

// exactKeys reports whether b, valid JSON, is an object whose keys are each
// a tag of T's fields, once.
func exactKeys[T any](b []byte) bool {
	tags := map[string]bool{}
	rt := reflect.TypeFor[T]()
	for i := range rt.NumField() {
		tags[strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		key, _ := k.(string)
		if err != nil || !tags[key] || seen[key] {
			return false
		}
		seen[key] = true
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return false
		}
	}
	return true
}
