package httpapi

import (
	"net/http"
	"strconv"
	"time"
)

// KeySet publishes the JWT signing keys (package signing's Manager). The
// interface keeps this package out of signing's internals.
type KeySet interface {
	// JWKS is the published public keys as a JWK set.
	JWKS(now time.Time) ([]byte, error)
	// Algorithms are the signing algorithms in use.
	Algorithms(now time.Time) []string
}

// Paths of the discovery documents.
const (
	JWKSPath          = "/.well-known/jwks.json"
	OAuthMetadataPath = "/.well-known/oauth-authorization-server"
	OIDCMetadataPath  = "/.well-known/openid-configuration"
)

// wellKnownCache lets verifiers, gateways and any cache between them keep
// the keys and metadata as long as verifiers are told to cache the keys: a
// next key is published a day before it signs, so 5 minutes loses nothing.
const wellKnownCache = "public, max-age=300"

// emptyJWKS is served when no app issues JWTs.
var emptyJWKS = []byte(`{"keys":[]}`)

// metadata is the RFC 8414 document, served at both discovery paths.
type metadata struct {
	Issuer                 string   `json:"issuer"`
	JWKSURI                string   `json:"jwks_uri"`
	TokenEndpoint          string   `json:"token_endpoint"`
	IntrospectionEndpoint  string   `json:"introspection_endpoint"`
	RevocationEndpoint     string   `json:"revocation_endpoint"`
	IntrospectionAuth      []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationAuth         []string `json:"revocation_endpoint_auth_methods_supported"`
	GrantTypes             []string `json:"grant_types_supported"`
	ResponseTypes          []string `json:"response_types_supported"`
	TokenEndpointAuth      []string `json:"token_endpoint_auth_methods_supported"`
	SubjectTypes           []string `json:"subject_types_supported"`
	IDTokenSigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
	AccessTokenSigningAlgs []string `json:"access_token_signing_alg_values_supported"`
}

func (h *Handler) jwks(req *request) error {
	req.w.Header().Set("Cache-Control", wellKnownCache)
	b := emptyJWKS
	if h.keys != nil {
		var err error
		if b, err = h.keys.JWKS(h.now()); err != nil {
			req.w.Header().Set("Cache-Control", "no-store")
			return err
		}
	}
	req.w.Header().Set("Content-Type", "application/jwk-set+json")
	req.w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	req.w.WriteHeader(http.StatusOK)
	req.status = http.StatusOK
	_, _ = req.w.Write(append(b, '\n'))
	return nil
}

func (h *Handler) metadata(req *request) error {
	algs := []string{h.algorithm}
	if h.keys != nil {
		algs = h.keys.Algorithms(h.now())
	}
	client := []string{"client_secret_basic", "client_secret_post"}
	req.w.Header().Set("Cache-Control", wellKnownCache)
	writeJSON(req, http.StatusOK, metadata{
		Issuer:                h.issuer,
		JWKSURI:               h.issuer + JWKSPath,
		TokenEndpoint:         h.issuer + "/v1/token",
		IntrospectionEndpoint: h.issuer + "/v1/introspect",
		RevocationEndpoint:    h.issuer + "/v1/revoke",
		IntrospectionAuth:     client,
		RevocationAuth:        client,
		GrantTypes:            []string{"refresh_token"},
		// No authorization endpoint, so no response type: RFC 8414 makes
		// the member required, and an empty list says so honestly.
		ResponseTypes: []string{},
		// Mini programs are public clients: they refresh without a secret.
		TokenEndpointAuth: []string{"none"},
		// mplogin issues no ID tokens; these two are here for the OpenID
		// discovery parsers that require them, and name what the keys sign.
		SubjectTypes:           []string{"public"},
		IDTokenSigningAlgs:     algs,
		AccessTokenSigningAlgs: algs,
	})
	return nil
}
