package douyin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// The golden answers hold ciphertexts made by OpenSSL (pkeyutl, PKCS #1
// v1.5) of the same plaintext: one block under a 2048-bit key, and two
// under a 1024-bit key, whose blocks hold at most 117 bytes.
func TestGoldenPhoneDecrypt(t *testing.T) {
	for _, tc := range []struct{ file, key string }{
		{"phone_ok.json", "app_key.pem"},
		{"phone_ok_two_blocks_1024.json", "app_key_1024.pem"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			srv, s := serveFile(t, 200, tc.file)
			c := newClient(t, srv.URL, loadKey(t, tc.key))
			phone, err := c.PhoneNumber(ctx(), secret.New(testToken), "phone-code-1")
			if err != nil {
				t.Fatal(err)
			}
			if phone.PhoneNumber != testPhone || phone.PurePhoneNumber != testPhone || phone.CountryCode != "86" ||
				phone.WatermarkAppID != testAppID || phone.WatermarkTimestamp != 1700000000 {
				t.Fatalf("phone %#v: %s %s", phone, phone.PhoneNumber, phone.PurePhoneNumber)
			}
			method, path, ctype, token, body := s.get()
			if method != http.MethodPost || path != PathPhoneNumber || ctype != "application/json" || token != testToken ||
				body["code"] != "phone-code-1" || len(body) != 1 {
				t.Fatalf("sent %s %s %s %q %v", method, path, ctype, token, body)
			}
		})
	}
}

func TestGoldenPhoneErrors(t *testing.T) {
	key := loadKey(t, "app_key.pem")
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
		calls    int32
	}{
		{"phone_28001008.json", 200, platform.KindTokenInvalid, "28001008", 1},
		{"phone_28001003.json", 200, platform.KindTokenInvalid, "28001003", 1},
		{"phone_28005187.json", 200, platform.KindInvalidCode, "28005187", 1},
		{"phone_-1.json", 200, platform.KindBusy, "-1", 2},
		{"phone_empty_data.json", 200, platform.KindUnknown, "", 1},
		{"phone_not_base64.json", 200, platform.KindBadCredentials, "", 1},
		{"phone_ok_two_blocks_1024.json", 200, platform.KindBadCredentials, "", 1}, // blocks of another key's size
		{"phone_ok.json", 502, platform.KindUnavailable, "", 1},
		{"phone_28001008.json", 401, platform.KindTokenInvalid, "28001008", 1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := serveFile(t, tc.status, tc.file)
			phone, err := newClient(t, srv.URL, key).PhoneNumber(ctx(), secret.New(testToken), "phone-code-1")
			if kind, code := kindCode(t, err); kind != tc.wantKind || code != tc.wantCode {
				t.Fatalf("got %v %q, want %v %q (%v)", kind, code, tc.wantKind, tc.wantCode, err)
			}
			if phone != nil {
				t.Fatal("a phone came with an error")
			}
			if n := s.calls.Load(); n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
			testutil.NoLeak(t, err, testToken, "phone-code-1", testPhone, testSecret)
		})
	}
}

// What the private key cannot vouch for is refused.
func TestPhoneRefusals(t *testing.T) {
	key := loadKey(t, "app_key.pem")
	other := loadKey(t, "app_key_1024.pem")
	cases := map[string]struct {
		data string
		kind platform.Kind
	}{
		"another app's number": {encrypt(t, &key.PublicKey, plaintext("tt0000000000000000")), platform.KindUnknown},
		"no watermark":         {encrypt(t, &key.PublicKey, []byte(`{"phoneNumber":"13800138000","purePhoneNumber":"13800138000"}`)), platform.KindUnknown},
		"no purePhoneNumber":   {encrypt(t, &key.PublicKey, []byte(`{"phoneNumber":"13800138000","watermark":{"appid":"`+testAppID+`"}}`)), platform.KindUnknown},
		"number not a string":  {encrypt(t, &key.PublicKey, []byte(`{"purePhoneNumber":13800138000,"watermark":{"appid":"`+testAppID+`"}}`)), platform.KindUnknown},
		"plaintext not JSON":   {encrypt(t, &key.PublicKey, []byte(`13800138000 x`)), platform.KindUnknown},
		"another key":          {encrypt(t, &other.PublicKey, plaintext(testAppID)), platform.KindBadCredentials}, // two 128-byte blocks: 256 bytes
		"not RSA of this key":  {encrypt(t, &key.PublicKey, plaintext(testAppID))[:40], platform.KindBadCredentials},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, _ := serve(t, 200, phoneAnswer(tc.data))
			phone, err := newClient(t, srv.URL, key).PhoneNumber(ctx(), secret.New(testToken), "phone-code-1")
			if k, _ := kindCode(t, err); k != tc.kind || phone != nil {
				t.Fatalf("got %v %v, want %v", phone, err, tc.kind)
			}
			testutil.NoLeak(t, err, testPhone, testToken, "phone-code-1")
		})
	}
}

// Tolerance: unpadded or URL-safe base64, a numeric country code, a
// missing phoneNumber, a plaintext split over blocks of a 2048-bit key.
func TestPhoneTolerance(t *testing.T) {
	key := loadKey(t, "app_key.pem")
	long := `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"appid":"` + testAppID +
		`","timestamp":1700000000},"padding":"` + strings.Repeat("x", 300) + `"}`
	std := encrypt(t, &key.PublicKey, plaintext(testAppID))
	for name, data := range map[string]string{
		"unpadded":         strings.TrimRight(std, "="),
		"url-safe":         strings.NewReplacer("+", "-", "/", "_").Replace(std),
		"several blocks":   encrypt(t, &key.PublicKey, []byte(long)),
		"no phoneNumber":   encrypt(t, &key.PublicKey, []byte(`{"purePhoneNumber":"13800138000","countryCode":"86","watermark":{"appid":"`+testAppID+`"}}`)),
		"null phoneNumber": encrypt(t, &key.PublicKey, []byte(`{"phoneNumber":null,"purePhoneNumber":"13800138000","countryCode":null,"watermark":{"appid":"`+testAppID+`"}}`)),
	} {
		t.Run(name, func(t *testing.T) {
			srv, _ := serve(t, 200, phoneAnswer(data))
			phone, err := newClient(t, srv.URL, key).PhoneNumber(ctx(), secret.New(testToken), "c")
			if err != nil || phone.PhoneNumber != testPhone || phone.PurePhoneNumber != testPhone {
				t.Fatalf("%v %v", phone, err)
			}
		})
	}
}

// Nothing is sent without a private key, an access token or a code.
func TestPhoneRefusedBeforeAnyCall(t *testing.T) {
	srv, s := serveFile(t, 200, "phone_ok.json")
	key := loadKey(t, "app_key.pem")

	_, err := newClient(t, srv.URL, nil).PhoneNumber(ctx(), secret.New(testToken), "c")
	if k, _ := kindCode(t, err); k != platform.KindBadCredentials || !errors.Is(err, ErrNoPrivateKey) ||
		!strings.Contains(err.Error(), "rsa_private_key") {
		t.Fatalf("got %v", err)
	}
	_, err = newClient(t, srv.URL, key).PhoneNumber(ctx(), secret.String{}, "c")
	if k, _ := kindCode(t, err); k != platform.KindBadCredentials {
		t.Fatalf("got %v", err)
	}
	for _, code := range []string{"", strings.Repeat("c", platform.MaxCodeLen+1)} {
		_, err = newClient(t, srv.URL, key).PhoneNumber(ctx(), secret.New(testToken), code)
		if k, _ := kindCode(t, err); k != platform.KindInvalidCode {
			t.Fatalf("got %v", err)
		}
	}
	if n := s.calls.Load(); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

// A Phone prints, formats and logs without its number.
func TestPhoneRedacted(t *testing.T) {
	p := Phone{PhoneNumber: testPhone, PurePhoneNumber: testPhone, CountryCode: "86", WatermarkAppID: testAppID,
		WatermarkTimestamp: time.Now().Unix()}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "phone", p)
	for _, s := range []string{p.String(), fmt.Sprintf("%v %+v %#v %s %d %x %q", p, p, p, p, p, p, &p), logged.String()} {
		if strings.Contains(s, testPhone) || strings.Contains(s, "3800138") {
			t.Fatalf("number in %q", s)
		}
	}
	if !strings.Contains(p.String(), "86") {
		t.Fatalf("country code missing: %s", p)
	}
}
