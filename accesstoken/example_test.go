package accesstoken_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store/memory"
)

// Call a business API with the app's token; when the platform rejects the
// token, Do fetches a new one and calls once more.
func ExampleManager_Do() {
	em := emulator.New(emulator.Config{})
	srv := httptest.NewServer(em)
	defer srv.Close()

	keys, _ := keyring.New(nil, bytes.Repeat([]byte{1}, keyring.KeySize)) // your master key
	m, _ := accesstoken.New(accesstoken.Config{Store: memory.New(), Keys: keys})
	wx, _ := wechat.New(wechat.Config{AppID: "wx0123456789abcdef", Secret: secret.New("app-secret"), Endpoint: srv.URL})
	key := accesstoken.Key("wechat", "wx0123456789abcdef")
	_ = m.Register(key, wx)

	tok, _ := m.Token(context.Background(), key)
	em.ExpireTokens("wechat", "wx0123456789abcdef") // the platform drops it early

	calls := 0
	err := m.Do(context.Background(), key, func(ctx context.Context, tok secret.String) error {
		calls++
		if !em.TokenValid("wechat", "wx0123456789abcdef", tok.Reveal()) {
			return &platform.Error{Host: "wechat", Kind: platform.KindTokenInvalid, Code: "40001"}
		}
		return nil
	})
	fresh, _ := m.Token(context.Background(), key)
	fmt.Println(err, calls, fresh.Equal(tok), tok)
	// Output: <nil> 2 false [redacted]
}
