// Package verify checks mplogin access tokens in a business backend: an
// HTTP middleware and a Verify call for everything else (gRPC, queues).
//
// JWT access tokens (RFC 9068) are verified locally with the keys mplogin
// publishes (its RFC 8414 metadata names the JWKS), with no call to mplogin
// per request; opaque mpa_ tokens, and JWTs on routes that must see a
// logout at once, are checked by RFC 7662 introspection, with a short
// cache. The package imports only the standard library and go-jose, so a
// backend pulls in none of mplogin's stores or drivers.
//
//	v, err := verify.New(ctx, verify.Options{
//		Issuer:       "https://login.example.com",
//		Audience:     "shop-api",                  // required: a JWT's aud must name this API
//		ClientID:     "shop-api",                  // introspection credentials: for
//		ClientSecret: os.Getenv("MPLOGIN_SECRET"), // mpa_ tokens and RequireLive
//	})
//	mux.Handle("/api/", v.Middleware(api))
//	mux.Handle("/api/pay", v.Middleware(pay, verify.RequireLive()))
//	// in a handler:
//	id := verify.IdentityFrom(r.Context()) // id.UserID, id.App, id.OpenID, …
//
// A token that is not valid gets 401 and a WWW-Authenticate header
// (ErrInvalidToken); when mplogin cannot be reached the answer is 503 with
// Retry-After (ErrUnavailable), so that clients wait instead of logging
// their users out. A JWT stays valid until its exp even after a logout,
// except on RequireLive routes. docs/verify.md in mplogin's repository says
// more.
package verify
