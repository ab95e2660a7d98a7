package douyin

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

const (
	testAppID  = "tt07e3715e98c9aac0"
	testSecret = "4e01bc8d93a94d70c48342e544a0429d9c94d8f0"
	testToken  = "0801121846735352506a356a6e67546f4b5a4f6b6c4c4a4d4e574c51"
	testPhone  = "13800138000"
)

// loadKey reads a PKCS #8 PEM private key from testdata.
func loadKey(t testing.TB, file string) *rsa.PrivateKey {
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

// encrypt is Douyin's side of a phone answer: msg in blocks of at most the
// key's size less 11, each PKCS #1 v1.5 (type 2) padded and raised to the
// public exponent, base64 of the blocks joined. It is written out here
// because the standard library's encryptor is deprecated.
func encrypt(t testing.TB, pub *rsa.PublicKey, msg []byte) string {
	t.Helper()
	k := pub.Size()
	var out []byte
	for len(msg) > 0 {
		n := min(len(msg), k-11)
		em := make([]byte, k)
		em[1] = 2
		ps := em[2 : k-n-1]
		if _, err := io.ReadFull(rand.Reader, ps); err != nil {
			t.Fatal(err)
		}
		for i := range ps {
			for ps[i] == 0 {
				ps[i] = byte(1 + i%255)
			}
		}
		copy(em[k-n:], msg[:n])
		c := new(big.Int).Exp(new(big.Int).SetBytes(em), big.NewInt(int64(pub.E)), pub.N)
		out = append(out, c.FillBytes(make([]byte, k))...)
		msg = msg[n:]
	}
	return base64.StdEncoding.EncodeToString(out)
}

// plaintext is a decrypted phone answer for appid.
func plaintext(appid string) []byte {
	return []byte(`{"phoneNumber":"` + testPhone + `","purePhoneNumber":"` + testPhone +
		`","countryCode":"86","watermark":{"appid":"` + appid + `","timestamp":1700000000}}`)
}

// phoneAnswer is a success of get_phonenumber_info carrying data.
func phoneAnswer(data string) []byte {
	b, _ := json.Marshal(map[string]any{"err_no": 0, "err_msg": "", "log_id": "20250306181534B9FBB8D8B73D40861290", "data": data})
	return b
}

// seen is what a canned server was sent.
type seen struct {
	mu                  sync.Mutex
	method, path, ctype string
	token               string
	body                map[string]any
	calls               atomic.Int32
}

func (s *seen) get() (method, path, ctype, token string, body map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.method, s.path, s.ctype, s.token, s.body
}

// serve answers every request with status and body, and records it.
func serve(t *testing.T, status int, body []byte) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		s.mu.Lock()
		s.method, s.path, s.ctype, s.token, s.body = r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("access-token"), m
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func serveFile(t *testing.T, status int, file string) (*httptest.Server, *seen) {
	t.Helper()
	body, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, status, body)
}

func newClient(t testing.TB, endpoint string, key *rsa.PrivateKey) *Client {
	t.Helper()
	c, err := New(Config{AppID: testAppID, Secret: secret.New(testSecret), Endpoint: endpoint, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kindCode returns the kind and Douyin code of a *platform.Error.
func kindCode(t *testing.T, err error) (platform.Kind, string) {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %T %v", err, err)
	}
	return pe.Kind, pe.Code
}

func ctx() context.Context { return context.Background() }
