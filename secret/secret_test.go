package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/secret"
)

const value = "the-secret-value-0123"

func TestNeverRendered(t *testing.T) {
	s := secret.New(value)
	type wrapper struct {
		Name   string
		Secret secret.String
		Ptr    *secret.String
	}
	w := wrapper{Name: "n", Secret: s, Ptr: &s}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, w))
	}
	out = append(out, s.String(), fmt.Sprint(s), fmt.Sprintln(&s))
	j, _ := json.Marshal(w)
	out = append(out, string(j))
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("msg", "secret", s, "wrapped", w, slog.Any("ptr", &s))
	}
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, value) {
			t.Fatalf("secret rendered: %s", o)
		}
	}
	if !strings.Contains(buf.String(), secret.Redacted) {
		t.Fatalf("placeholder missing: %s", buf.String())
	}
}

func TestRevealAndCompare(t *testing.T) {
	s := secret.New(value)
	if s.Reveal() != value || s.IsZero() || !s.Equal(secret.New(value)) || s.Equal(secret.New("other")) {
		t.Fatal("basic operations")
	}
	var z secret.String
	if !z.IsZero() || z.String() != "" {
		t.Fatal("zero value")
	}
	var u secret.String
	if err := json.Unmarshal([]byte(`"from-config"`), &u); err != nil || u.Reveal() != "from-config" {
		t.Fatal(err, u.Reveal())
	}
}
