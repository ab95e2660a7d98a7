package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/mplogin/mplogin/verify"
)

// A business backend: every /api/ route needs a login, and paying needs a
// session that is still live, so that a logout stops it at once.
func Example() {
	ctx := context.Background()
	v, err := verify.New(ctx, verify.Options{
		Issuer:       "https://login.example.com",
		Audience:     "shop-api",
		Apps:         []string{"shop-wechat", "shop-baidu"},
		ClientID:     "shop-api",
		ClientSecret: os.Getenv("MPLOGIN_CLIENT_SECRET"),
		Logger:       slog.Default(),
	})
	if err != nil {
		log.Fatal(err) // the options are wrong, or the metadata names another issuer
	}

	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := verify.IdentityFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"user": id.UserID, "app": id.App})
	})
	pay := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := verify.IdentityFrom(r.Context())
		log.Printf("payment by %s, session %s", id.UserID, id.SessionID)
	})

	mux := http.NewServeMux()
	mux.Handle("/api/", v.Middleware(orders))
	mux.Handle("POST /api/pay", v.Middleware(pay, verify.RequireLive()))
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// Outside HTTP, for a gRPC interceptor or a queue consumer, Verify says
// which of the two failures it was.
func ExampleVerifier_Verify() {
	var v *verify.Verifier // from verify.New
	check := func(ctx context.Context, token string) error {
		id, err := v.Verify(ctx, token)
		switch {
		case errors.Is(err, verify.ErrInvalidToken):
			return err // unauthenticated: the client refreshes or logs in again
		case errors.Is(err, verify.ErrUnavailable):
			return err // try again later; the user is not logged out
		}
		log.Printf("user %s of %s", id.UserID, id.App)
		return nil
	}
	_ = check
}
