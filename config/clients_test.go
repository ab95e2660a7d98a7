package config

import (
	"strings"
	"testing"

	"github.com/mplogin/mplogin/secret"
)

func TestIssuer(t *testing.T) {
	if c := mustParse(t, head+wechatApp, nil); c.Issuer != "http://127.0.0.1:8300" || c.IssuerURL() != c.Issuer {
		t.Errorf("default issuer %q, IssuerURL %q; want http://127.0.0.1:8300", c.Issuer, c.IssuerURL())
	}
	// The default follows listen, whatever its host.
	if c := mustParse(t, "listen: 0.0.0.0:9000\n"+head+wechatApp, nil); c.Issuer != "http://0.0.0.0:9000" {
		t.Errorf("issuer from listen 0.0.0.0:9000 = %q", c.Issuer)
	}
	for _, ok := range []string{"https://login.example.com", "https://login.example.com/mplogin",
		"http://127.0.0.1:8300", "http://localhost:8300", "'http://[::1]:8300'"} {
		c := mustParse(t, "access_tokens: {issuer: "+ok+"}\n"+head+wechatApp, nil)
		if want := strings.Trim(ok, "'"); c.Issuer != want {
			t.Errorf("issuer %q parsed as %q", want, c.Issuer)
		}
	}
	for _, tt := range []struct{ v, want string }{
		{"http://login.example.com", "config: access_tokens.issuer: must be https (http only for 127.0.0.1 or localhost)"},
		{"login.example.com", "config: access_tokens.issuer: must be an absolute http or https URL"},
		{"ftp://login.example.com", "config: access_tokens.issuer: must be an absolute http or https URL"},
		{"'https://u:p@login.example.com'", "config: access_tokens.issuer: must not contain credentials"},
	} {
		if got := parseErr(t, "access_tokens: {issuer: "+tt.v+"}\n"+head+wechatApp, nil); got != tt.want {
			t.Errorf("issuer %s: %s\nwant %s", tt.v, got, tt.want)
		}
	}
	// The issuer is a key of access_tokens only.
	if got := parseErr(t, "issuer: https://login.example.com\n"+head+wechatApp, nil); !strings.Contains(got, `unknown key "issuer"`) {
		t.Errorf("top-level issuer: %s", got)
	}
	// Built in code: empty means the default.
	c := testConfig()
	if err := c.Validate(); err != nil || c.IssuerURL() != "http://"+c.Listen {
		t.Errorf("code-built config: %v, IssuerURL %q", err, c.IssuerURL())
	}
}

func TestClients(t *testing.T) {
	const good = "0123456789abcdef"
	getenv := env(map[string]string{"ORDERS": "orders-secret-0123456789", "EMPTY": ""})
	c := mustParse(t, head+wechatApp+"clients:\n  - id: orders\n    secret: ${ORDERS}\n  - id: gw\n    secret: "+good+"\n", getenv)
	want := []Client{{ID: "orders", Secret: secret.New("orders-secret-0123456789")}, {ID: "gw", Secret: secret.New(good)}}
	if len(c.Clients) != 2 || c.Clients[0] != want[0] || c.Clients[1] != want[1] {
		t.Errorf("clients %+v", c.Clients)
	}
	if c := mustParse(t, head+wechatApp+"clients: []\n", nil); len(c.Clients) != 0 {
		t.Errorf("empty list gave %+v", c.Clients)
	}
	if c := mustParse(t, head+wechatApp, nil); len(c.Clients) != 0 {
		t.Errorf("no clients gave %+v", c.Clients)
	}
	for _, tt := range []struct{ name, src, want string }{
		{"no id", "clients:\n  - secret: " + good + "\n", "config: clients[0]: id: required"},
		{"bad id", "clients:\n  - id: Orders API\n    secret: " + good + "\n",
			"config: clients[0]: id: must be 1 to 64 of a-z, 0-9, '.', '_' and '-'"},
		{"duplicate id", "clients:\n  - {id: a, secret: " + good + "}\n  - {id: a, secret: " + good + "x}\n",
			`config: clients[1] (a): id: duplicate "a"`},
		{"no secret", "clients:\n  - id: a\n", "config: clients[0] (a): secret: required"},
		{"empty secret", "clients:\n  - id: a\n    secret: ${EMPTY}\n", "config: clients[0] (a): secret: required"},
		{"unset secret", "clients:\n  - id: a\n    secret: ${NOPE}\n",
			"config: clients[0] (a): secret: environment variable NOPE is not set"},
		{"short secret", "clients:\n  - id: a\n    secret: shortsecret\n",
			"config: clients[0] (a): secret: must be at least 16 characters"},
		{"secret with white space", "clients:\n  - id: a\n    secret: ' " + good + "'\n",
			"config: clients[0] (a): secret: has leading or trailing white space"},
		{"unknown key", "clients:\n  - id: a\n    secret: " + good + "\n    scope: read\n",
			`config: line 11: clients[0] (a): unknown key "scope"`},
		{"misspelt key", "clients:\n  - id: a\n    secert: " + good + "\n",
			`config: line 10: clients[0] (a): unknown key "secert" (did you mean "secret"?)`},
		{"not a list", "clients: {id: a}\n", "config: clients: must be a list, not a mapping"},
		{"item not a mapping", "clients: [a]\n", "config: clients[0]: must be a mapping, not a single value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErr(t, head+wechatApp+tt.src, getenv)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, good) || strings.Contains(got, "shortsecret") {
				t.Errorf("the error carries the secret: %s", got)
			}
		})
	}
}

func TestExposeUnionID(t *testing.T) {
	c := mustParse(t, head+wechatApp+baiduApp+"    expose_unionid: true\n", nil)
	if c.Apps[0].ExposeUnionID || !c.Apps[1].ExposeUnionID {
		t.Errorf("expose_unionid: %v, %v; want false (default), true", c.Apps[0].ExposeUnionID, c.Apps[1].ExposeUnionID)
	}
	if got, want := parseErr(t, head+wechatApp+"    expose_unionid: yes please\n", nil),
		"config: apps[0] (w): expose_unionid: must be true or false"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
