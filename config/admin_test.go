package config

import (
	"strings"
	"testing"

	"github.com/mplogin/mplogin/secret"
)

func TestAdmin(t *testing.T) {
	const good = "0123456789abcdef0123456789abcdef"
	const short = "short-admin-token-0123456789"
	getenv := env(map[string]string{"MPLOGIN_ADMIN_TOKEN": "ops-token-0123456789-0123456789-xyz", "EMPTY": ""})
	c := mustParse(t, head+wechatApp+"admin:\n  listen: 127.0.0.1:8301\n  tokens:\n    - name: ops\n      token: ${MPLOGIN_ADMIN_TOKEN}\n    - {name: oncall, token: "+good+"}\n", getenv)
	want := []AdminToken{{Name: "ops", Token: secret.New("ops-token-0123456789-0123456789-xyz")}, {Name: "oncall", Token: secret.New(good)}}
	if c.Admin == nil || c.Admin.Listen != "127.0.0.1:8301" || len(c.Admin.Tokens) != 2 ||
		c.Admin.Tokens[0] != want[0] || c.Admin.Tokens[1] != want[1] {
		t.Errorf("admin %+v", c.Admin)
	}
	// Off unless configured.
	if c := mustParse(t, head+wechatApp, nil); c.Admin != nil {
		t.Errorf("no admin gave %+v", c.Admin)
	}
	if c := mustParse(t, head+wechatApp+"admin:\n", nil); c.Admin != nil {
		t.Errorf("an empty admin gave %+v", c.Admin)
	}
	for _, tt := range []struct{ name, src, want string }{
		{"no listen", "admin:\n  tokens: [{name: ops, token: " + good + "}]\n", "config: admin.listen: required"},
		{"bad listen", "admin:\n  listen: localhost\n  tokens: [{name: ops, token: " + good + "}]\n",
			"config: admin.listen: must be host:port, such as 127.0.0.1:8300"},
		{"public listen", "admin:\n  listen: 127.0.0.1:8300\n  tokens: [{name: ops, token: " + good + "}]\n",
			"config: admin.listen: must differ from listen: the admin API has a listener of its own"},
		{"no tokens", "admin:\n  listen: 127.0.0.1:8301\n", "config: admin.tokens: at least one token is required"},
		{"no name", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{token: " + good + "}]\n", "config: admin.tokens[0]: name: required"},
		{"bad name", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: Ops Team, token: " + good + "}]\n",
			"config: admin.tokens[0]: name: must be 1 to 64 of a-z, 0-9, '.', '_' and '-'"},
		{"duplicate name", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops, token: " + good + "}, {name: ops, token: " + good + "x}]\n",
			`config: admin.tokens[1] (ops): name: duplicate "ops"`},
		{"no token", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops}]\n", "config: admin.tokens[0] (ops): token: required"},
		{"empty token", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops, token: '${EMPTY}'}]\n", "config: admin.tokens[0] (ops): token: required"},
		{"unset token", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops, token: '${NOPE}'}]\n",
			"config: admin.tokens[0] (ops): token: environment variable NOPE is not set"},
		{"short token", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops, token: " + short + "}]\n",
			"config: admin.tokens[0] (ops): token: must be at least 32 characters"},
		{"token with white space", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops, token: ' " + good + "'}]\n",
			"config: admin.tokens[0] (ops): token: has leading or trailing white space"},
		{"unknown key", "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops, token: " + good + ", scope: all}]\n",
			`config: line 10: admin.tokens[0] (ops): unknown key "scope"`},
		{"unknown admin key", "admin:\n  listen: 127.0.0.1:8301\n  token: " + good + "\n",
			`config: line 10: admin: unknown key "token" (did you mean "tokens"?)`},
		{"not a mapping", "admin: 127.0.0.1:8301\n", "config: admin: must be a mapping, not a single value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErr(t, head+wechatApp+tt.src, getenv)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, good) || strings.Contains(got, short) || strings.Contains(got, "0123456789") {
				t.Errorf("the error carries the token: %s", got)
			}
		})
	}
}
