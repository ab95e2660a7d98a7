package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Printed or logged, a configuration shows no password and no query value
// of its store and sessions URLs: a Sentinel URL carries Redis's password
// as a query parameter.
func TestSummaryHidesURLSecrets(t *testing.T) {
	const secret = "Kq2-secret"
	c := Default()
	c.Store = "postgres://u:" + secret + "@db.internal/mplogin?sslpassword=" + secret
	c.Sessions = "redis://:" + secret + "@sentinel1:26379/0?master_name=m&password=" + secret + "&sentinel_password=" + secret
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "config", c)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), logged.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("shows a secret: %s", out)
		}
		if !strings.Contains(out, "db.internal") || !strings.Contains(out, "sentinel1:26379") {
			t.Errorf("does not say which servers: %s", out)
		}
	}
}
