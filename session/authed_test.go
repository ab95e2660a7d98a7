package session_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
)

// readCounter counts session reads by access token.
type readCounter struct {
	store.Store
	reads atomic.Int64
}

func (s *readCounter) SessionByAccess(ctx context.Context, h []byte) (store.Session, error) {
	s.reads.Add(1)
	return s.Store.SessionByAccess(ctx, h)
}

// An Authed from Authenticate is what a request acts on after checking its
// token once: decrypting and resolving a phone number with it read the
// session no more, and take the same input rules as the token forms.
func TestAuthenticatedCalls(t *testing.T) {
	var rc *readCounter
	f := newFixture(t, withApps(decryptApps), wrapStore(func(st store.Store) store.Store { rc = &readCounter{Store: st}; return rc }))
	ctx := context.Background()
	tok := f.login(t, "wx", "amy", wxKey1)

	for _, bad := range []string{"", "garbage", tok.RefreshToken.Reveal(), "mpa_" + strings.Repeat("A", 43)} {
		if a, err := f.svc.Authenticate(ctx, bad); a != nil || code(t, err) != mplogin.CodeInvalidToken {
			t.Errorf("token %q: %v %v, want invalid_token", bad, a, err)
		}
	}
	reads := rc.reads.Load()
	a, err := f.svc.Authenticate(ctx, tok.AccessToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if n := rc.reads.Load() - reads; n != 1 {
		t.Fatalf("Authenticate read the session %d times", n)
	}
	if info := a.Info(); info.App != "wx" || info.User.ID != tok.User.ID || info.User.OpenID != "openid-amy" ||
		info.ExpiresIn < session.DefaultPolicy.AccessTTL-time.Second || info.ExpiresIn > session.DefaultPolicy.AccessTTL {
		t.Fatalf("info %+v", info)
	}

	reads = rc.reads.Load()
	plain := wxPlain(wxAppID, f.clock.Now())
	if out, err := f.svc.DecryptAuthed(ctx, a, encWX(t, wxKey1, plain)); err != nil || string(out) != plain {
		t.Fatalf("decrypt: %q %v", out, err)
	}
	phone := fmt.Sprintf(`{"phoneNumber":"13800001111","purePhoneNumber":"13800001111","countryCode":"86","watermark":{"timestamp":%d,"appid":%q}}`,
		f.clock.Now().Unix(), wxAppID)
	in := encWX(t, wxKey1, phone)
	p, err := f.svc.PhoneAuthed(ctx, a, session.PhoneInput{EncryptedData: in.EncryptedData, IV: in.IV})
	if err != nil || p.Number.PurePhoneNumber != "13800001111" || p.UserID != tok.User.ID || p.Linked {
		t.Fatalf("phone: %v", err)
	}
	if got, _, ok, err := f.svc.StoredPhone(ctx, tok.User.ID); err != nil || !ok || got != p.Number {
		t.Fatalf("stored phone: %v %v", ok, err)
	}
	if _, err := f.svc.DecryptAuthed(ctx, a, session.DecryptInput{IV: in.IV}); code(t, err) != mplogin.CodeInvalidRequest {
		t.Errorf("decrypt without data: %v, want invalid_request", err)
	}
	if _, err := f.svc.PhoneAuthed(ctx, a, session.PhoneInput{}); code(t, err) != mplogin.CodeInvalidRequest {
		t.Errorf("phone without input: %v, want invalid_request", err)
	}
	_, err = f.svc.DecryptAuthed(ctx, a, encWX(t, wxKey2, plain))
	wantDecryptFailed(t, "wrong key", nil, err)
	if n := rc.reads.Load() - reads; n != 0 {
		t.Fatalf("calls with an Authed read the session %d times", n)
	}
	if n := f.failures(t, tok); n != 1 {
		t.Fatalf("failures = %d, want 1", n)
	}

	// Only Authenticate makes a usable one, and it does not outlive its
	// access token.
	for name, bad := range map[string]*session.Authed{"nil": nil, "zero": {}} {
		if _, err := f.svc.DecryptAuthed(ctx, bad, encWX(t, wxKey1, plain)); code(t, err) != mplogin.CodeInvalidToken {
			t.Errorf("%s Authed: %v, want invalid_token", name, err)
		}
	}
	f.clock.Advance(session.DefaultPolicy.AccessTTL + mplogin.MaxClockSkew)
	if _, err := f.svc.PhoneAuthed(ctx, a, session.PhoneInput{EncryptedData: in.EncryptedData, IV: in.IV}); code(t, err) != mplogin.CodeInvalidToken {
		t.Errorf("expired: %v, want invalid_token", err)
	}
}
