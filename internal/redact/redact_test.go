package redact

import (
	"errors"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:pw@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"redis://u:p%40w@h/0", "redis://u:xxxxx@h/0"},
		{"redis://u@h/0", "redis://u@h/0"},
		{"redis://h/0?master_name=m&sentinel_password=s&x=y", "redis://h/0?master_name=xxxxx&sentinel_password=xxxxx&x=xxxxx"},
		{"redis://h/0?secret", "redis://h/0?xxxxx"},
		{"redis://h/0?a=1&&b", "redis://h/0?a=xxxxx&&xxxxx"},
		{"redis://[::1]:6379/0?client_name=a@b", "redis://[::1]:6379/0?client_name=xxxxx"},
		{"postgres://u:pw@db/x?sslpassword=s#frag", "postgres://u:xxxxx@db/x?sslpassword=xxxxx"},
		// Malformed: masked all the same.
		{"redis://u:pw@[::1/0", "redis://u:xxxxx@[::1/0"},
		{"postgres://u:pw@h:x/db?x=1", "postgres://u:xxxxx@h:x/db?x=xxxxx"},
		{"redis://u:12/34@h/0", "redis://u:xxxxx@h/0"},
		{"redis://u:p@ss@h/0", "redis://u:xxxxx@h/0"},
		{"host=h password=pw", "(unparsable)"},
		{"", "(unparsable)"},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValues(t *testing.T) {
	for _, c := range []struct {
		in                string
		values, passwords []string
	}{
		{"redis://h/0", nil, nil},
		{"redis://u@h/0", nil, nil},
		// As written and decoded, longest first.
		{"redis://u:p%40w@h/0?db=3&password=q%2Bq+", []string{"u:p%40w", "q%2Bq+", "u:p@w", "p%40w", "q+q ", "q+q+", "p@w", "3"},
			[]string{"u:p%40w", "q%2Bq+", "u:p@w", "p%40w", "q+q ", "q+q+", "p@w"}},
		{"redis://h/0?sentinel_password=sp&x=secret-x&k", []string{"secret-x", "sp", "k"}, []string{"sp", "k"}},
		// Malformed: read as text all the same.
		{"redis://u:pw@[::1/0?x=v", []string{"u:pw", "pw", "v"}, []string{"u:pw", "pw"}},
		{"redis://h/0#frag", []string{"frag"}, []string{"frag"}},
		{"redis://u:12/34@h/0", []string{"u:12/34", "12/34"}, []string{"u:12/34", "12/34"}},
		{"host=h password=pw", nil, nil},
	} {
		if got := Values(c.in); strings.Join(got, "|") != strings.Join(c.values, "|") {
			t.Errorf("Values(%q) = %q, want %q", c.in, got, c.values)
		}
		if got := Passwords(c.in); strings.Join(got, "|") != strings.Join(c.passwords, "|") {
			t.Errorf("Passwords(%q) = %q, want %q", c.in, got, c.passwords)
		}
	}
}

func TestError(t *testing.T) {
	base := errors.New("cause")
	err := Error(errors.Join(base, errors.New("bad value \"s3cret\"")), []string{"s3cret"})
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), Mask) {
		t.Errorf("Error() = %q", err)
	}
	if !errors.Is(err, base) {
		t.Error("the scrubbed error lost its chain")
	}
	if Error(base, []string{"x"}) != base {
		t.Error("an error with nothing to scrub was wrapped")
	}
	if Error(nil, nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

func TestScrub(t *testing.T) {
	for _, c := range []struct {
		msg    string
		values []string
		want   string
	}{
		{`invalid duration "s3cret/+"`, []string{"s3cret/+"}, `invalid duration "xxxxx"`},
		{`invalid database number: "x"`, []string{"m", "x"}, `invalid database number: "xxxxx"`},
		{"pool_size 1000 is 10", []string{"10"}, "pool_size 1000 is xxxxx"},
		{"u:pw@h pw pwd", []string{"u:pw", "pw"}, "xxxxx@h xxxxx pwd"},
		{"pw", []string{"pw"}, "xxxxx"},
		{"ünï-pw-ünï", []string{"pw"}, "ünï-xxxxx-ünï"},
		{"a pw b", nil, "a pw b"},
	} {
		if got := Scrub(c.msg, c.values); got != c.want {
			t.Errorf("Scrub(%q, %q) = %q, want %q", c.msg, c.values, got, c.want)
		}
	}
}
