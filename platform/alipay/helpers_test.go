package alipay

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

const (
	testAppID = "2021004100000001"
	// testCode is an auth code in the shape my.getAuthCode gives.
	testCode = "9b1e3c0d5a7f4e2c8d6b0a9f1e2d3c4b"
	// testAESKey is a test-only content-encryption key.
	testAESKey = "aa4BtZ4tspm2wnXLb1ThQA=="
	testMobile = "13800138000"
)

// loadPrivate reads a PKCS #8 PEM private key from testdata.
func loadPrivate(t testing.TB, file string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// loadPublic reads a published public key from testdata with
// ParsePublicKey.
func loadPublic(t testing.TB, file string) *rsa.PublicKey {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePublicKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testKeys are the test-only key pairs: the app's, which signs requests,
// and the one standing in for Alipay's, which signs answers.
type testKeys struct {
	app, alipay *rsa.PrivateKey
}

func loadKeys(t testing.TB) testKeys {
	t.Helper()
	return testKeys{app: loadPrivate(t, "test_app_key.pem"), alipay: loadPrivate(t, "test_alipay_key.pem")}
}

// signB64 is Alipay's side of a signature, written out here rather than
// taken from the package: SHA256withRSA, PKCS #1 v1.5, standard base64.
// It is deterministic, so golden files can be checked byte for byte.
func signB64(t testing.TB, key *rsa.PrivateKey, content string) string {
	t.Helper()
	h := sha256.Sum256([]byte(content))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// newClient is a client for testAppID with the test keys, options applied
// to its config.
func newClient(t testing.TB, endpoint string, opts ...func(*Config)) *Client {
	t.Helper()
	k := loadKeys(t)
	cfg := Config{AppID: testAppID, PrivateKey: k.app, AlipayPublicKey: &k.alipay.PublicKey,
		AESKey: secret.New(testAESKey), Endpoint: endpoint}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seen is what a canned server was sent.
type seen struct {
	mu                  sync.Mutex
	method, path, ctype string
	query               string
	form                url.Values
	calls               atomic.Int32
}

func (s *seen) get() (method, path, ctype, query string, form url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.method, s.path, s.ctype, s.query, s.form
}

// serve answers every request with status and body, and records it.
func serve(t *testing.T, status int, body []byte) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		s.mu.Lock()
		s.method, s.path, s.ctype, s.query, s.form = r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.URL.RawQuery, form
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func serveFile(t *testing.T, status int, file string) (*httptest.Server, *seen) {
	t.Helper()
	return serve(t, status, readFile(t, file))
}

func readFile(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kindCode returns the kind and Alipay code of a *platform.Error.
func kindCode(t *testing.T, err error) (platform.Kind, string) {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %T %v", err, err)
	}
	return pe.Kind, pe.Code
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}
