package session

import (
	"strings"
	"testing"
)

// TestPhoneKey: the forms in which the platforms give one number make one
// key; different numbers, or the same digits in another country, do not.
func TestPhoneKey(t *testing.T) {
	for _, c := range []struct {
		name string
		p    PhoneNumber
		want string
	}{
		{"wechat mainland", PhoneNumber{PhoneNumber: "13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"}, "8613800138000"},
		{"baidu mobile", PhoneNumber{PhoneNumber: "13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"}, "8613800138000"},
		{"no country code", PhoneNumber{PhoneNumber: "13800138000"}, "8613800138000"},
		{"wechat abroad", PhoneNumber{PhoneNumber: "+1 555 0100", PurePhoneNumber: "5550100", CountryCode: "1"}, "15550100"},
		{"full number only, abroad", PhoneNumber{PhoneNumber: "+1 555 0100"}, "15550100"},
		{"grouped", PhoneNumber{PurePhoneNumber: "138-0013-8000", CountryCode: "+86"}, "8613800138000"},
		{"no digits", PhoneNumber{PhoneNumber: "n/a"}, ""},
		{"empty", PhoneNumber{}, ""},
	} {
		if got := phoneKey(c.p); got != c.want {
			t.Errorf("%s: phoneKey = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestPhoneQueryKey(t *testing.T) {
	for _, c := range []struct {
		q    string
		want string
		ok   bool
	}{
		{"13800138000", "8613800138000", true},
		{"+86 138 0013 8000", "8613800138000", true},
		{"+8613800138000", "8613800138000", true},
		{" 138-0013-8000 ", "8613800138000", true},
		{"+1 (555) 0100", "15550100", true},
		{"", "", false},
		{"+", "", false},
		{"1234", "", false},
		{"138+00138000", "", false},
		{"13800138000x", "", false},
		{"１３８００１３８０００", "", false}, // full-width digits
		{strings.Repeat("1", 21), "", false},
	} {
		got, ok := phoneQueryKey(c.q)
		if got != c.want || ok != c.ok {
			t.Errorf("phoneQueryKey(%q) = %q, %v; want %q, %v", c.q, got, ok, c.want, c.ok)
		}
	}
}

// FuzzPhoneQueryKey: any input either is refused or gives only digits,
// with a country code in front.
func FuzzPhoneQueryKey(f *testing.F) {
	for _, s := range []string{"13800138000", "+86 138 0013 8000", "+1 (555) 0100", "++", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got, ok := phoneQueryKey(q)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q with %q", q, got)
			}
			return
		}
		if len(got) < 5 || strings.Trim(got, "0123456789") != "" {
			t.Fatalf("phoneQueryKey(%q) = %q", q, got)
		}
		if !strings.HasPrefix(strings.TrimSpace(q), "+") && !strings.HasPrefix(got, "86") {
			t.Fatalf("a number without + is not mainland: %q → %q", q, got)
		}
	})
}
