// Package verify checks mplogin access tokens in a business backend.
//
// JWT access tokens (RFC 9068) are verified locally with the keys mplogin
// publishes (its RFC 8414 metadata names the JWKS), with no call to mplogin
// per request; opaque mpa_ tokens, and JWTs that must be seen to be live
// (VerifyLive), are checked by RFC 7662 introspection, with a short cache.
// The package imports only the standard library and go-jose, so a backend
// pulls in none of mplogin's stores or drivers.
//
//	v, err := verify.New(ctx, verify.Options{
//		Issuer:       "https://login.example.com",
//		Audience:     "shop-api",                  // required: a JWT's aud must name this API
//		ClientID:     "shop-api",                  // introspection credentials,
//		ClientSecret: os.Getenv("MPLOGIN_SECRET"), // for mpa_ tokens and VerifyLive
//	})
//	id, err := v.Verify(ctx, token) // id.UserID, id.App, id.OpenID, …
//
// A token that is not valid is ErrInvalidToken; when mplogin cannot be
// reached the error is ErrUnavailable, so that callers answer "try later"
// instead of logging their users out. A JWT stays valid until its exp even
// after a logout, unless it is checked with VerifyLive.
package verify
