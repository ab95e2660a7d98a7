package config

import (
	"testing"

	"github.com/mplogin/mplogin/secret"
)

func TestMetrics(t *testing.T) {
	c := mustParse(t, head+wechatApp+"metrics:\n  listen: 127.0.0.1:9090\n", nil)
	if c.Metrics == nil || c.Metrics.Listen != "127.0.0.1:9090" {
		t.Errorf("metrics %+v", c.Metrics)
	}
	// Absent or empty: /metrics stays on the public listener.
	for _, src := range []string{"", "metrics:\n"} {
		if c := mustParse(t, head+wechatApp+src, nil); c.Metrics != nil {
			t.Errorf("%q gave %+v", src, c.Metrics)
		}
	}
	// Port 0 picks a free port, so it clashes with no other listener.
	c = mustParse(t, "listen: 127.0.0.1:0\n"+head+wechatApp+"metrics: {listen: '127.0.0.1:0'}\n", nil)
	if c.Metrics == nil || c.Metrics.Listen != "127.0.0.1:0" {
		t.Errorf("port 0: %+v", c.Metrics)
	}
	const admin = "admin:\n  listen: 127.0.0.1:8301\n  tokens: [{name: ops, token: 0123456789abcdef0123456789abcdef}]\n"
	mustParse(t, head+wechatApp+admin+"metrics: {listen: '127.0.0.1:9090'}\n", nil)
	for _, tt := range []struct{ name, src, want string }{
		{"no listen", "metrics: {}\n", "config: metrics.listen: required"},
		{"empty listen", "metrics:\n  listen: ''\n", "config: metrics.listen: required"},
		{"no port", "metrics:\n  listen: localhost\n", "config: metrics.listen: must be host:port, such as 127.0.0.1:8300"},
		{"bad port", "metrics:\n  listen: 127.0.0.1:99999\n", "config: metrics.listen: port must be a number from 0 to 65535"},
		{"public listen", "metrics:\n  listen: 127.0.0.1:8300\n",
			"config: metrics.listen: must differ from listen: /metrics moves to a listener of its own"},
		{"admin listen", admin + "metrics:\n  listen: 127.0.0.1:8301\n", "config: metrics.listen: must differ from admin.listen"},
		{"unknown key", "metrics:\n  listen: 127.0.0.1:9090\n  path: /m\n", `config: line 10: metrics: unknown key "path"`},
		{"not a mapping", "metrics: 127.0.0.1:9090\n", "config: metrics: must be a mapping, not a single value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(t, head+wechatApp+tt.src, nil); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	// Built in code, Validate checks the same.
	cfg := Default()
	cfg.Store, cfg.MasterKey = "sqlite:x", make([]byte, MasterKeySize)
	cfg.Apps = []App{{Name: "w", Flavor: "wechat", AppID: "wx1", Secret: secret.New("s")}}
	cfg.Metrics = &Metrics{Listen: cfg.Listen}
	if err := cfg.Validate(); err == nil || err.Error() != "config: metrics.listen: must differ from listen: /metrics moves to a listener of its own" {
		t.Errorf("Validate: %v", err)
	}
}
