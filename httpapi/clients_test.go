package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/secret"
)

func TestClientSetCheck(t *testing.T) {
	cs := newClientSet([]Client{{ID: "a", Secret: secret.New("secret-a-0123456789")}, {ID: "b", Secret: secret.New("secret-b-0123456789")}})
	for _, c := range []struct {
		id, sec string
		ok      bool
	}{
		{"a", "secret-a-0123456789", true},
		{"b", "secret-b-0123456789", true},
		{"a", "secret-b-0123456789", false},
		{"a", "secret-a-012345678", false},
		{"a", "", false},
		{"c", "secret-a-0123456789", false},
		{"", "", false},
		{"c", "\x00no such client", false}, // what an unknown id is compared with
	} {
		if got := cs.check(c.id, c.sec); got != c.ok {
			t.Errorf("check(%q, %q) = %v", c.id, c.sec, got)
		}
	}
	// Only MACs are held, never a secret.
	for _, m := range cs.macs {
		if strings.Contains(string(m), "secret-") {
			t.Fatal("a secret is held in clear")
		}
	}
}

// FuzzClientCredentials: no Authorization header or form body panics the
// parsers; whatever they accept, the errors are the API's, and carry no
// part of the input; and the Basic encoding of any id and secret reads
// back as the same id and secret.
func FuzzClientCredentials(f *testing.F) {
	f.Add("Basic "+base64.StdEncoding.EncodeToString([]byte("orders:s3cret")), "token=x", "id", "sec:%+ ")
	f.Add("basic Og==", "client_id=a&client_secret=b&token=x", "", "")
	f.Add("Basic !!", "token=x&token=y", "a%zz", "b")
	f.Add("Bearer mpa_x", "token=%zz;", "é", "\x00")
	f.Add("Basic "+base64.StdEncoding.EncodeToString([]byte("a%3Ab:c%25d")), "client_secret=x", "a:b", "c%d")
	f.Fuzz(func(t *testing.T, auth, body, id, sec string) {
		form, ferr := parseForm(body)
		r := httptest.NewRequest("POST", "/v1/introspect", nil)
		r.Header.Set("Authorization", auth)
		if ferr == nil {
			c, err := clientCredentials(r, form)
			for _, e := range []error{ferr, err} {
				var me *mplogin.Error
				if e != nil && !errors.As(e, &me) {
					t.Fatalf("error %v is not an *mplogin.Error", e)
				}
			}
			// The refusal is one fixed message; a secret long enough to be
			// one (16 characters at least) is never in it.
			if err == nil && c.given && len(c.secret) >= config.MinClientSecretLen && strings.Contains(errInvalidClient.Message, c.secret) {
				t.Fatal("the error message carries the secret")
			}
		} else if msg := ferr.Error(); len(body) > 8 && strings.Contains(msg, body) {
			t.Fatalf("form error %q repeats the body", msg)
		}
		enc := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
		c, ok, err := parseBasic(enc)
		if err != nil || !ok || !c.given || c.id != id || c.secret != sec {
			t.Fatalf("Basic %q:%q read back as %q:%q, %v, %v", id, sec, c.id, c.secret, ok, err)
		}
	})
}
