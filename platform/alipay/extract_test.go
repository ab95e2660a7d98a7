package alipay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestExtractSigned(t *testing.T) {
	const n = nodeOAuthToken
	cases := []struct {
		name, body  string
		wantNode    string
		wantContent string
		wantSign    string // base64 of the decoded sign
		wantErr     error
	}{
		{"plain", `{"` + n + `":{"user_id":"1"},"sign":"AAAA"}`, n, `{"user_id":"1"}`, "AAAA", nil},
		{"sign first", `{"sign":"AAAA","` + n + `":{"user_id":"1"}}`, n, `{"user_id":"1"}`, "AAAA", nil},
		{"whitespace kept inside, dropped outside", " \t\r\n{ \"" + n + "\" :\n{ \"a\" : [ 1 , 2 ] } , \"sign\" : \"AAAA\" }\n",
			n, `{ "a" : [ 1 , 2 ] }`, "AAAA", nil},
		{"escapes kept as sent", `{"` + n + `":{"u":"http:\/\/x\/y","c":"\u4e2d\n\"q\""},"sign":"AAAA"}`,
			n, `{"u":"http:\/\/x\/y","c":"\u4e2d\n\"q\""}`, "AAAA", nil},
		{"raw UTF-8 kept", `{"` + n + `":{"m":"授权码"},"sign":"AAAA"}`, n, `{"m":"授权码"}`, "AAAA", nil},
		{"escaped slash in sign", `{"` + n + `":{},"sign":"ab\/c"}`, n, `{}`, "ab/c", nil},
		{"escaped names", `{"alipay_system_oauth_token_respons\u0065":{},"\u0073ign":"AAAA"}`, n, `{}`, "AAAA", nil},
		{"error_response", `{"error_response":{"code":"40002"},"sign":"AAAA"}`, nodeError, `{"code":"40002"}`, "AAAA", nil},
		{"method node wins", `{"error_response":{"code":"40002"},"` + n + `":{"user_id":"1"},"sign":"AAAA"}`,
			n, `{"user_id":"1"}`, "AAAA", nil},
		{"cert sn", `{"` + n + `":{},"alipay_cert_sn":"abc","sign":"AAAA"}`, n, `{}`, "AAAA", nil},
		{"other members ignored", `{"x":[{"` + n + `":{}}],"` + n + `":{"a":null},"y":true,"z":-1.5e+3,"sign":"AAAA"}`,
			n, `{"a":null}`, "AAAA", nil},
		{"name in a string", `{"error_response":{"m":"\"` + n + `\":{\"user_id\":\"2\"}"},"sign":"AAAA"}`,
			nodeError, `{"m":"\"` + n + `\":{\"user_id\":\"2\"}"}`, "AAAA", nil},
		{"name one level down", `{"error_response":{"` + n + `":{"user_id":"2"}},"sign":"AAAA"}`,
			nodeError, `{"` + n + `":{"user_id":"2"}}`, "AAAA", nil},
		{"braces in strings", `{"` + n + `":{"a":"}{\"}"},"sign":"AAAA"}`, n, `{"a":"}{\"}"}`, "AAAA", nil},
		// A duplicate inside the node is the node reader's concern.
		{"duplicate inside the node", `{"` + n + `":{"a":1,"a":2},"sign":"AAAA"}`, n, `{"a":1,"a":2}`, "AAAA", nil},

		{"node twice", `{"` + n + `":{},"` + n + `":{},"sign":"AAAA"}`, "", "", "", errDuplicate},
		{"node twice, once escaped", `{"` + n + `":{},"alipay_system_oauth_token_respons\u0065":{},"sign":"AAAA"}`, "", "", "", errDuplicate},
		{"sign twice", `{"` + n + `":{},"sign":"AAAA","sign":"AAAA"}`, "", "", "", errDuplicate},
		{"any name twice", `{"` + n + `":{},"x":1,"x":1,"sign":"AAAA"}`, "", "", "", errDuplicate},
		{"error_response twice", `{"error_response":{},"error_response":{},"sign":"AAAA"}`, "", "", "", errDuplicate},
		{"no node", `{"sign":"AAAA"}`, "", "", "", errNoNode},
		{"empty object", `{}`, "", "", "", errNoNode},
		{"node not an object", `{"` + n + `":[],"sign":"AAAA"}`, "", "", "", errNodeShape},
		{"node null", `{"` + n + `":null,"sign":"AAAA"}`, "", "", "", errNodeShape},
		{"no sign", `{"` + n + `":{}}`, n, "", "", errNoSign},
		{"empty sign", `{"` + n + `":{},"sign":""}`, n, "", "", errNoSign},
		{"sign null", `{"` + n + `":{},"sign":null}`, n, "", "", errNoSign},
		{"sign a number", `{"` + n + `":{},"sign":1}`, n, "", "", errNoSign},
		{"sign URL-safe base64", `{"` + n + `":{},"sign":"A-_A"}`, n, "", "", errNoSign},
		{"sign unpadded", `{"` + n + `":{},"sign":"AAA"}`, n, "", "", errNoSign},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := extractSigned([]byte(tc.body), n)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil && tc.wantErr != errNoSign {
				return
			}
			if a.node != tc.wantNode {
				t.Fatalf("node %q", a.node)
			}
			if tc.wantErr != nil {
				return
			}
			if string(a.content) != tc.wantContent || b64(a.sign) != tc.wantSign {
				t.Fatalf("content %s sign %s", a.content, b64(a.sign))
			}
			if !bytes.Contains([]byte(tc.body), a.content) {
				t.Fatal("content is not the bytes as received")
			}
		})
	}
}

// Not one JSON object: refused, whatever the damage.
func TestExtractSignedSyntax(t *testing.T) {
	const good = `{"` + nodeOAuthToken + `":{"a":[1,true,false,null,"s",{"b":-0.5E-2}]},"sign":"AAAA"}`
	if _, err := extractSigned([]byte(good), nodeOAuthToken); err != nil {
		t.Fatal(err)
	}
	// Not JSON at all, for encoding/json either.
	invalid := []string{
		"", " ", "\xef\xbb\xbf" + good, good + "x", good + "{}", good + ",",
		`{"a":1,}`, `{,"a":1}`, `{"a" 1}`, `{"a":}`, `{a:1}`, `{'a':1}`, `{"a":1 "b":2}`, `{"a":1`, `{"a`,
		`{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":{"b"}}`, `{"a":{"b":1,}}`,
		`{"a":tru}`, `{"a":True}`, `{"a":nul}`, `{"a":falsey}`,
		`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`, `{"a":+1}`, `{"a":0x1}`, `{"a":NaN}`,
		`{"a":"\x"}`, `{"a":"\u12G4"}`, `{"a":"\u12"}`, `{"a":"\`, "{\"a\":\"\t\"}", "{\"a\":\"\x00\"}", `{"a":"x}`,
		strings.Replace(good, `"sign"`, `"sign`, 1),
	}
	// JSON, but not one object within the depth bound.
	valid := []string{
		"null", "[]", `"x"`, "1",
		`{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`,
		`{"a":` + strings.Repeat(`{"b":`, maxDepth) + "1" + strings.Repeat("}", maxDepth) + `}`,
	}
	for _, b := range append(invalid, valid...) {
		if _, err := extractSigned([]byte(b), nodeOAuthToken); !errors.Is(err, errSyntax) {
			t.Errorf("%.60q: %v", b, err)
		}
	}
	for _, b := range invalid {
		if json.Valid([]byte(b)) {
			t.Errorf("%.60q: encoding/json takes it", b)
		}
	}
	// Just under the depth bound is fine.
	deep := `{"` + nodeOAuthToken + `":{"a":` + strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) + `},"sign":"AAAA"}`
	if _, err := extractSigned([]byte(deep), nodeOAuthToken); err != nil {
		t.Fatal(err)
	}
}

// readNode matches names exactly, refuses a name twice and values of the
// wrong type, and never needs the tokens.
func TestReadNode(t *testing.T) {
	n, err := readNode([]byte(`{"code":"40002","msg":"m","sub_code":"s","sub_msg":"sm","user_id":"u","open_id":"o","access_token":{"x":1}}`))
	if err != nil || *n != (node{code: "40002", msg: "m", subCode: "s", subMsg: "sm", userID: "u", openID: "o"}) {
		t.Fatalf("%+v %v", n, err)
	}
	if n, err := readNode([]byte(`{"code":40002,"user_id":null}`)); err != nil || n.code != "40002" || n.userID != "" {
		t.Fatalf("%+v %v", n, err)
	}
	for _, b := range []string{`{"user_id":1}`, `{"code":true}`, `{"code":"1","code":"2"}`, `{"open_id":["o"]}`,
		`{"user_id":"` + strings.Repeat("1", maxIDLen+1) + `"}`, `[]`, `{"code":"1"`} {
		if _, err := readNode([]byte(b)); err == nil {
			t.Errorf("%s accepted", b)
		}
	}
	if n, err := readNode([]byte(`{"USER_ID":"u","User_Id":"v"}`)); err != nil || n.userID != "" {
		t.Fatalf("%+v %v", n, err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
