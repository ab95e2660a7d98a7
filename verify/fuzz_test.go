package verify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: no input panics, every error is one of the two kinds and does
// not repeat the input, and whatever is accepted speaks for a token the
// issuer really minted.
func FuzzVerify(f *testing.F) {
	es := newES256(f)
	is := newIssuer(f, es)
	r := newRig(f, is, nil)
	good := es.sign(f, claims(is.url, t0), header{})
	opaque := "mpa_" + strings.Repeat("Q", 51)
	is.activate(opaque, t0.Add(time.Hour))
	ctx := context.Background()
	want := map[string]Identity{}
	for _, raw := range []string{good, opaque} {
		id, err := r.Verify(ctx, raw)
		if err != nil {
			f.Fatal(err)
		}
		want[id.SessionID] = id
	}

	for _, s := range []string{
		good, opaque, "", ".", "..", "....", "a.b.c", "mpa_", "mpr_x", "mpa_" + strings.Repeat("A", 51),
		good[:len(good)-1], good + "A", strings.Replace(good, ".", "..", 1), strings.ToUpper(good),
		"eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.", "eyJ9.e30.x", "e30.e30.e30.e30.e30",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := r.Verify(ctx, raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error of neither kind: %v", err)
			}
			if len(raw) >= 12 && strings.Contains(err.Error(), raw) {
				t.Fatalf("the error repeats the input: %v", err)
			}
			return
		}
		if w, ok := want[id.SessionID]; !ok || w != id {
			t.Fatalf("accepted %q as %+v", raw, id)
		}
	})
}
