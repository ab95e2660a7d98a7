package session_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/userdata"
)

// The published WeChat vector (docs/platforms/wechat.md, "Test vectors").
const (
	vecAppID = "wx4f4bc4dec97d474b"
	vecKey   = "tiihtNczf5v6AKRyjwEUhQ=="
	vecIV    = "r7BXXKkLb8qrSNn05n0qiA=="
	vecData  = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
	vecSHA   = "3237d8a5dbd413523c194882c7156544d8a06e2afcc97383cc300c17bd09391b"

	wxAppID  = "wx0123456789abcdef"
	bdAppKey = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"

	wxKey1 = "AAECAwQFBgcICQoLDA0ODw==" // 16 bytes
	wxKey2 = "EBESExQVFhcYGRobHB0eHw=="
	bdKey1 = "1df09d0a1677dd72b8325aec59576e0c" // 24 bytes
)

// keyPlatform answers every code <user>.<anything> with openid-<user> and
// the session key set last.
type keyPlatform struct {
	mu  sync.Mutex
	key string
}

func (p *keyPlatform) Flavor() platform.Flavor { return platform.FlavorWeChat }

func (p *keyPlatform) setKey(k string) { p.mu.Lock(); p.key = k; p.mu.Unlock() }

func (p *keyPlatform) Exchange(_ context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	user, _, _ := strings.Cut(req.Code, ".")
	return &platform.Login{OpenID: "openid-" + user, SessionKey: secret.New(p.key)}, nil
}

// wxPlain is a WeChat payload for appid stamped at ts.
func wxPlain(appid string, ts time.Time) string {
	return fmt.Sprintf(`{"openId":"o1","nickName":"Ann","watermark":{"timestamp":%d,"appid":%q}}`, ts.Unix(), appid)
}

func encWX(t *testing.T, key, plain string) session.DecryptInput {
	t.Helper()
	data, iv, err := userdata.EncryptWeChat(secret.New(key), []byte(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	return session.DecryptInput{EncryptedData: data, IV: iv}
}

func sign(raw, key string) string {
	sum := sha1.Sum([]byte(raw + key))
	return hex.EncodeToString(sum[:])
}

// wantDecryptFailed checks that err is the one decrypt_failed value.
func wantDecryptFailed(t *testing.T, what string, out []byte, err error) {
	t.Helper()
	if err != session.ErrDecryptFailed || out != nil {
		t.Fatalf("%s: (%q, %v), want (nil, ErrDecryptFailed)", what, out, err)
	}
}

func TestDecryptWeChatVector(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "vector", "ann", vecKey)
	in := session.DecryptInput{EncryptedData: vecData, IV: vecIV}
	out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), in)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != vecSHA || len(out) != 393 {
		t.Fatalf("plaintext (%d bytes) %s", len(out), out)
	}

	// With rawData: the signature must hold for the key that decrypted.
	raw := `{"nickName":"Band","gender":1}`
	in.RawData, in.Signature = raw, sign(raw, vecKey)
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), in); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	in.Signature = strings.ToUpper(in.Signature)
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), in); err != nil {
		t.Fatalf("upper-case signature: %v", err)
	}
	in.Signature = sign(raw+" ", vecKey)
	out, err = f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), in)
	wantDecryptFailed(t, "bad signature", out, err)
	if n := f.failures(t, tok); n != 1 {
		t.Fatalf("failures = %d, want 1", n)
	}

	// The same data under another appid's app fails: the watermark binds it.
	other := f.login(t, "wx", "ann", vecKey)
	out, err = f.svc.Decrypt(ctx, other.AccessToken.Reveal(), session.DecryptInput{EncryptedData: vecData, IV: vecIV})
	wantDecryptFailed(t, "vector under another appid", out, err)
}

func TestDecryptWeChatRoundTripAndAge(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "bea", wxKey1)
	now := f.clock.Now()

	plain := wxPlain(wxAppID, now.Add(-time.Hour))
	out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), encWX(t, wxKey1, plain))
	if err != nil || string(out) != plain {
		t.Fatalf("fresh payload: %q, %v", out, err)
	}
	for _, tc := range []struct {
		name string
		in   session.DecryptInput
	}{
		{"stale watermark", encWX(t, wxKey1, wxPlain(wxAppID, now.Add(-25*time.Hour)))},
		{"watermark from the future", encWX(t, wxKey1, wxPlain(wxAppID, now.Add(10*time.Minute)))},
		{"another appid", encWX(t, wxKey1, wxPlain(vecAppID, now))},
		{"another key", encWX(t, wxKey2, wxPlain(wxAppID, now))},
		{"no watermark", encWX(t, wxKey1, `{"openId":"o1"}`)},
	} {
		out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), tc.in)
		wantDecryptFailed(t, tc.name, out, err)
	}
	if n := f.failures(t, tok); n != 5 {
		t.Fatalf("failures = %d, want 5", n)
	}
	if !strings.Contains(f.logs.String(), `"failures":5`) {
		t.Fatalf("no decrypt failure logged with its count:\n%s", f.logs)
	}
}

func TestDecryptBaidu(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "bd", "cat", bdKey1)
	// Over 255 bytes, so that a reader of the length's low byte only fails;
	// an iv that is not key[:16], unlike the published vector.
	content := `{"openid":"o1","nickname":"` + strings.Repeat("n", 300) + `","sex":1}`
	iv := bytes.Repeat([]byte{0xa5}, 16)
	data, ivB64, err := userdata.EncryptBaidu(secret.New(bdKey1), []byte(content), bdAppKey, iv, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := session.DecryptInput{EncryptedData: data, IV: ivB64}
	out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), in)
	if err != nil || string(out) != content {
		t.Fatalf("round trip: %q, %v", out, err)
	}

	// Baidu signs no rawData: a signature cannot be checked, so it fails.
	signed := in
	signed.RawData, signed.Signature = "{}", sign("{}", bdKey1)
	out, err = f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), signed)
	wantDecryptFailed(t, "baidu with raw_data", out, err)

	otherApp, _, err := userdata.EncryptBaidu(secret.New(bdKey1), []byte(content), "another-app-key", iv, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err = f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), session.DecryptInput{EncryptedData: otherApp, IV: ivB64})
	wantDecryptFailed(t, "another app key", out, err)
	if n := f.failures(t, tok); n != 2 {
		t.Fatalf("failures = %d, want 2", n)
	}
}

// A second login rotates the session key; data made under the first opens
// until the grace period (5 min) ends.
func TestDecryptPreviousKeyWithinGrace(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	first := f.login(t, "wx", "dan", wxKey1)
	old := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	second := f.login(t, "wx", "dan", wxKey2)
	cur := encWX(t, wxKey2, wxPlain(wxAppID, f.clock.Now()))

	for _, tok := range []*session.Tokens{first, second} {
		for name, in := range map[string]session.DecryptInput{"previous key": old, "current key": cur} {
			if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), in); err != nil {
				t.Fatalf("%s within grace: %v", name, err)
			}
		}
	}
	// rawData is checked against the key that decrypted, not any key.
	signed := old
	signed.RawData = "{}"
	signed.Signature = sign("{}", wxKey2)
	out, err := f.svc.Decrypt(ctx, second.AccessToken.Reveal(), signed)
	wantDecryptFailed(t, "previous-key data signed with the current key", out, err)
	signed.Signature = sign("{}", wxKey1)
	if _, err := f.svc.Decrypt(ctx, second.AccessToken.Reveal(), signed); err != nil {
		t.Fatalf("previous-key data signed with the previous key: %v", err)
	}

	f.clock.Advance(5*time.Minute + mplogin.MaxClockSkew)
	out, err = f.svc.Decrypt(ctx, second.AccessToken.Reveal(), old)
	wantDecryptFailed(t, "previous key after grace", out, err)
	if _, err := f.svc.Decrypt(ctx, second.AccessToken.Reveal(), cur); err != nil {
		t.Fatalf("current key after grace: %v", err)
	}
}

func TestDecryptLocksAfterFailures(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "eve", wxKey1)
	good := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	bad := encWX(t, wxKey2, wxPlain(wxAppID, f.clock.Now()))
	for i := range session.MaxDecryptFailures - 1 {
		out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), bad)
		wantDecryptFailed(t, fmt.Sprint("failure ", i+1), out, err)
	}
	// A success does not reset the count.
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good); err != nil {
		t.Fatalf("success before the cap: %v", err)
	}
	out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), bad)
	wantDecryptFailed(t, "last failure", out, err)
	if n := f.failures(t, tok); n != session.MaxDecryptFailures {
		t.Fatalf("failures = %d, want %d", n, session.MaxDecryptFailures)
	}

	out, err = f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good)
	wantDecryptFailed(t, "valid payload on a locked session", out, err)
	// Locked means not tried: the count stays where it is.
	if n := f.failures(t, tok); n != session.MaxDecryptFailures {
		t.Fatalf("failures = %d after a locked attempt", n)
	}
	// The lock is the session's, not the user's: a new login decrypts.
	again := f.login(t, "wx", "eve", wxKey1)
	if _, err := f.svc.Decrypt(ctx, again.AccessToken.Reveal(), encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))); err != nil {
		t.Fatalf("new session: %v", err)
	}
	// The session still works for everything else.
	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); err != nil {
		t.Fatalf("check on a locked session: %v", err)
	}
}

func TestDecryptRequestAndTokenErrors(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "fay", wxKey1)
	good := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	for _, tc := range []struct {
		name string
		in   session.DecryptInput
	}{
		{"no data", session.DecryptInput{IV: good.IV}},
		{"no iv", session.DecryptInput{EncryptedData: good.EncryptedData}},
		{"raw data without signature", session.DecryptInput{EncryptedData: good.EncryptedData, IV: good.IV, RawData: "{}"}},
		{"signature without raw data", session.DecryptInput{EncryptedData: good.EncryptedData, IV: good.IV, Signature: sign("{}", wxKey1)}},
	} {
		if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), tc.in); code(t, err) != mplogin.CodeInvalidRequest {
			t.Errorf("%s: %v, want invalid_request", tc.name, err)
		}
	}
	if n := f.failures(t, tok); n != 0 {
		t.Fatalf("malformed requests counted as %d decrypt failures", n)
	}
	for _, bad := range []string{"", "garbage", tok.RefreshToken.Reveal(), "mpa_" + strings.Repeat("A", 43)} {
		if _, err := f.svc.Decrypt(ctx, bad, good); code(t, err) != mplogin.CodeInvalidToken {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	if err := f.svc.Logout(ctx, tok.AccessToken.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("after logout: %v", err)
	}
}

// The log says that decryption failed, for whom and how often; never the
// payload, the iv, the key or the plaintext.
func TestDecryptLogsNoPayload(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "gus", wxKey1)
	plain := wxPlain(wxAppID, f.clock.Now())
	good := encWX(t, wxKey1, plain)
	stale := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now().Add(-48*time.Hour)))
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), stale)
	wantDecryptFailed(t, "stale", nil, err)
	logs := f.logs.String()
	if !strings.Contains(logs, `"msg":"decrypt failed"`) || !strings.Contains(logs, `"user":"`+tok.User.ID+`"`) ||
		!strings.Contains(logs, `"app":"wx"`) || !strings.Contains(logs, `"failures":1`) {
		t.Fatalf("decrypt failure not logged as expected:\n%s", logs)
	}
	for _, needle := range []string{good.EncryptedData, good.IV, stale.EncryptedData, stale.IV, wxKey1, "Ann", `"openId"`, "watermark"} {
		if strings.Contains(logs, needle) {
			t.Fatalf("log carries %q:\n%s", needle, logs)
		}
	}
	// Should an input be logged by mistake, it renders redacted.
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "in", good)
	fmt.Fprintf(&b, "%v %+v %s", good, good, good)
	if strings.Contains(b.String(), good.IV) || strings.Contains(b.String(), good.EncryptedData) {
		t.Fatalf("DecryptInput renders its payload: %s", b.String())
	}
}

// failStore fails the calls Decrypt makes after the token lookup, one at a
// time.
type failStore struct {
	store.Store
	mu               sync.Mutex
	identity, failed bool
}

func (s *failStore) set(identity, failed bool) {
	s.mu.Lock()
	s.identity, s.failed = identity, failed
	s.mu.Unlock()
}

func (s *failStore) GetIdentity(ctx context.Context, p platform.Family, a, o string) (store.Identity, error) {
	s.mu.Lock()
	down := s.identity
	s.mu.Unlock()
	if down {
		return store.Identity{}, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return s.Store.GetIdentity(ctx, p, a, o)
}

func (s *failStore) AddDecryptFailure(ctx context.Context, id string) (int, error) {
	s.mu.Lock()
	down := s.failed
	s.mu.Unlock()
	if down {
		return 0, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return s.Store.AddDecryptFailure(ctx, id)
}

func TestDecryptStoreUnavailable(t *testing.T) {
	var fs *failStore
	f := newFixture(t, withApps(decryptApps), wrapStore(func(st store.Store) store.Store { fs = &failStore{Store: st}; return fs }))
	ctx := context.Background()
	tok := f.login(t, "wx", "hal", wxKey1)
	good := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	bad := encWX(t, wxKey2, wxPlain(wxAppID, f.clock.Now()))

	fs.set(true, false)
	_, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good)
	if code(t, err) != mplogin.CodeStoreUnavailable || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("identity lookup failing: %v", err)
	}
	fs.set(false, true)
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), bad); code(t, err) != mplogin.CodeStoreUnavailable {
		t.Fatalf("counting failing: %v", err)
	}
	// A success needs no write.
	if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good); err != nil {
		t.Fatalf("success while counting fails: %v", err)
	}
}

// A sealed key that the keyring cannot open is the server's fault (a master
// key dropped from the configuration): internal_error, not counted.
func TestDecryptUnopenableKey(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "ivy", wxKey1)
	otherKeys, _ := keyring.New(nil, bytes.Repeat([]byte{8}, 32))
	svc, err := session.New(session.Config{Store: f.store, Keys: otherKeys, Policy: session.DefaultPolicy, Now: f.clock.Now,
		Apps: []session.App{{Name: "wx", Family: "wechat", AppID: wxAppID, Client: f.keyPlat, CodeTTL: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Decrypt(ctx, tok.AccessToken.Reveal(), encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now())))
	if code(t, err) != mplogin.CodeInternal || !errors.Is(err, keyring.ErrOpen) {
		t.Fatalf("unopenable key: %v", err)
	}
	if n := f.failures(t, tok); n != 0 {
		t.Fatalf("failures = %d, want 0", n)
	}
}

// noCount never locks a session, so that every fuzz input reaches the
// decryptors.
type noCount struct{ store.Store }

func (noCount) AddDecryptFailure(context.Context, string) (int, error) { return 1, nil }

// Whatever a client sends, Decrypt does not panic, and answers the
// plaintext, invalid_request (a shape error) or exactly ErrDecryptFailed.
func FuzzDecrypt(f *testing.F) {
	fx := newFixture(f, withApps(decryptApps), wrapStore(func(st store.Store) store.Store { return noCount{st} }))
	wx := fx.svc
	wxTok := fx.login(f, "vector", "ann", vecKey).AccessToken.Reveal()
	bdTok := fx.login(f, "bd", "bob", bdKey1).AccessToken.Reveal()
	raw := `{"nickName":"Band"}`
	f.Add(false, vecData, vecIV, "", "")
	f.Add(false, vecData, vecIV, raw, sign(raw, vecKey))
	f.Add(false, vecData[:len(vecData)-4], vecIV, "", "")
	f.Add(false, vecData, "AQ==", "", "")
	f.Add(false, "", "", "x", "")
	f.Add(true, vecData, vecIV, "", "")
	f.Add(true, "AAAA", "AAAAAAAAAAAAAAAAAAAAAA==", "", "")
	f.Fuzz(func(t *testing.T, baidu bool, data, iv, rawData, sig string) {
		tok := wxTok
		if baidu {
			tok = bdTok
		}
		out, err := wx.Decrypt(context.Background(), tok, session.DecryptInput{EncryptedData: data, IV: iv, RawData: rawData, Signature: sig})
		switch {
		case err == nil:
			if len(out) == 0 {
				t.Fatal("success without data")
			}
		case mplogin.ErrorCode(err) == mplogin.CodeInvalidRequest:
		case err != session.ErrDecryptFailed || out != nil:
			t.Fatalf("(%q, %v), want nil and ErrDecryptFailed", out, err)
		}
	})
}
