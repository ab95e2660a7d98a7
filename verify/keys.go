package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// metadataPath is appended to the issuer to find its metadata.
	metadataPath = "/.well-known/oauth-authorization-server"

	// maxDocument caps what is read of a metadata document, a JWKS or an
	// introspection answer: none of them is near this size, and a broken
	// or hostile server must not make the verifier read without end.
	maxDocument = 1 << 20

	// defaultKeysMaxAge is how long a JWKS is used before it is fetched
	// again when its answer says nothing (mplogin says max-age=300).
	defaultKeysMaxAge = 5 * time.Minute
	// maxKeysMaxAge bounds a JWKS's own max-age, so that a key the issuer
	// withdraws stops being accepted within the hour whatever it says.
	maxKeysMaxAge = time.Hour
)

// metadata is what the verifier uses of the issuer's RFC 8414 document.
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// publicKey is one usable key of the JWKS.
type publicKey struct {
	alg jose.SignatureAlgorithm
	key any // *ecdsa.PublicKey or *rsa.PublicKey
}

// keySet is the JWKS as last fetched. It is never changed once published,
// so requests read it without a lock.
type keySet struct {
	keys      map[string]publicKey // by kid
	fetchedAt time.Time
	maxAge    time.Duration
}

// errIssuerMismatch marks a metadata document that names another issuer:
// a configuration mistake, which New reports instead of retrying.
var errIssuerMismatch = errors.New("the metadata names another issuer")

// fetchState is the outcome of the last fetch of the metadata and JWKS,
// guarded by Verifier.mu.
type fetchState struct {
	lastAttempt time.Time  // when the last fetch started
	lastErr     error      // its error, nil after a success
	inflight    *fetchCall // the fetch running now, if any
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// startFetch starts a fetch of the metadata (until it has been read once)
// and the JWKS unless one is running or one started less than
// JWKSRefreshInterval ago. It returns the running or new fetch, or nil when
// none may start. The fetch runs detached from ctx's cancellation, so that
// the request that triggered it may give up without failing the others
// waiting for it.
func (v *Verifier) startFetch(ctx context.Context, reason string) *fetchCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.fetch.inflight != nil {
		return v.fetch.inflight
	}
	now := v.now()
	if !v.fetch.lastAttempt.IsZero() && now.Sub(v.fetch.lastAttempt) < v.refreshInterval {
		return nil
	}
	v.fetch.lastAttempt = now
	v.nextFetch.Store(now.Add(v.refreshInterval).UnixNano())
	c := &fetchCall{done: make(chan struct{})}
	v.fetch.inflight = c
	v.fetches.Add(1)
	go func() {
		defer v.fetches.Done()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		err := v.fetchKeys(fctx)
		if err != nil {
			v.log.WarnContext(fctx, "verify: fetching the issuer's keys failed", "reason", reason, "issuer", v.issuer, "err", err)
		}
		v.mu.Lock()
		c.err = err
		v.fetch.lastErr = err
		v.fetch.inflight = nil
		v.mu.Unlock()
		close(c.done)
	}()
	return c
}

// wait waits for c or for ctx, whichever ends first.
func (c *fetchCall) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// untilNextFetch is how long until another fetch may start.
func (v *Verifier) untilNextFetch() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return max(v.refreshInterval-v.now().Sub(v.fetch.lastAttempt), time.Second)
}

// lastFetchFailed says whether the last fetch ended in an error.
func (v *Verifier) lastFetchFailed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fetch.lastErr != nil
}

// fetchKeys reads the metadata, if it has not been read yet, then the JWKS,
// and publishes each as it succeeds.
func (v *Verifier) fetchKeys(ctx context.Context) error {
	md := v.meta.Load()
	if md == nil {
		var err error
		if md, err = v.fetchMetadata(ctx); err != nil {
			return err
		}
		v.meta.Store(md)
	}
	ks, err := v.fetchJWKS(ctx, md.JWKSURI)
	if err != nil {
		return err
	}
	v.keys.Store(ks)
	v.log.InfoContext(ctx, "verify: loaded the issuer's keys", "issuer", v.issuer, "keys", len(ks.keys), "max_age", ks.maxAge)
	return nil
}

func (v *Verifier) fetchMetadata(ctx context.Context) (*metadata, error) {
	body, _, err := v.get(ctx, v.metadataURL)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("metadata: not a JSON document: %w", err)
	}
	if md.Issuer != v.issuer {
		return nil, fmt.Errorf("metadata: %w: %q, not the configured %q", errIssuerMismatch, md.Issuer, v.issuer)
	}
	if err := v.checkEndpoint(md.JWKSURI); err != nil {
		return nil, fmt.Errorf("metadata: jwks_uri: %w", err)
	}
	// Only introspection needs this one: without it JWTs still verify.
	if md.IntrospectionEndpoint != "" {
		if err := v.checkEndpoint(md.IntrospectionEndpoint); err != nil {
			return nil, fmt.Errorf("metadata: introspection_endpoint: %w", err)
		}
	}
	return &md, nil
}

// checkEndpoint accepts an absolute http or https URL; https when the
// issuer is https, so that the metadata cannot send the verifier to a
// plain-text key set.
func (v *Verifier) checkEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("missing")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	case v.httpsOnly && u.Scheme != "https":
		return fmt.Errorf("%q is not https, as the issuer is", s)
	}
	return nil
}

func (v *Verifier) fetchJWKS(ctx context.Context, uri string) (*keySet, error) {
	body, h, err := v.get(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("jwks: not a JSON key set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("jwks: no \"keys\" member")
	}
	ks := &keySet{keys: make(map[string]publicKey, len(doc.Keys)), fetchedAt: v.now(), maxAge: maxAge(h, v.refreshInterval)}
	for i, raw := range doc.Keys {
		kid, k, err := usableKey(raw)
		if err != nil {
			// One key the verifier cannot use must not cost it the others.
			v.log.WarnContext(ctx, "verify: skipping a key of the JWKS", "index", i, "kid", kid, "err", err)
			continue
		}
		if _, dup := ks.keys[kid]; dup {
			v.log.WarnContext(ctx, "verify: the JWKS lists a kid twice; keeping the first", "kid", kid)
			continue
		}
		ks.keys[kid] = k
	}
	return ks, nil
}

// usableKey reads one JWK and accepts it only as a signing key this package
// verifies with: EC P-256 for ES256 or RSA of at least 2048 bits for RS256,
// with a kid, a public key only.
func usableKey(raw json.RawMessage) (string, publicKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return "", publicKey{}, fmt.Errorf("not a JWK: %w", err)
	}
	var use struct {
		Use string `json:"use"`
	}
	_ = json.Unmarshal(raw, &use) // it parsed as a JWK just now
	switch {
	case jwk.KeyID == "":
		return "", publicKey{}, errors.New("no kid")
	case use.Use != "" && use.Use != "sig":
		return jwk.KeyID, publicKey{}, fmt.Errorf("use is %q, not sig", use.Use)
	case !jwk.IsPublic():
		// A published private key signs for anyone: refuse it rather than
		// accept what anyone can forge.
		return jwk.KeyID, publicKey{}, errors.New("it holds private key material")
	}
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return jwk.KeyID, publicKey{}, errors.New("an EC key not on P-256")
		}
		if jwk.Algorithm != "" && jwk.Algorithm != string(jose.ES256) {
			return jwk.KeyID, publicKey{}, fmt.Errorf("an EC P-256 key for %q", jwk.Algorithm)
		}
		return jwk.KeyID, publicKey{alg: jose.ES256, key: k}, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return jwk.KeyID, publicKey{}, fmt.Errorf("an RSA key of %d bits", k.N.BitLen())
		}
		if jwk.Algorithm != "" && jwk.Algorithm != string(jose.RS256) {
			return jwk.KeyID, publicKey{}, fmt.Errorf("an RSA key for %q", jwk.Algorithm)
		}
		return jwk.KeyID, publicKey{alg: jose.RS256, key: k}, nil
	}
	return jwk.KeyID, publicKey{}, fmt.Errorf("a key of type %T", jwk.Key)
}

// maxAge reads the JWKS answer's Cache-Control max-age, within
// [floor, maxKeysMaxAge]; without one, defaultKeysMaxAge.
func maxAge(h http.Header, floor time.Duration) time.Duration {
	d := defaultKeysMaxAge
	for part := range strings.SplitSeq(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(name) {
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n >= 0 {
				d = time.Duration(min(n, int(maxKeysMaxAge/time.Second))) * time.Second
			}
		case "no-cache", "no-store":
			d = 0
		}
	}
	return min(max(d, floor), maxKeysMaxAge)
}

// get fetches a JSON document and returns its body and headers.
func (v *Verifier) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return body, resp.Header, nil
}

func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocument {
		return nil, fmt.Errorf("the answer is over %d bytes", maxDocument)
	}
	return b, nil
}
