package verify

import (
	"context"
	"fmt"
	"testing"
)

func BenchmarkVerifyCached(b *testing.B) {
	es := newES256(b)
	is := newIssuer(b, es)
	r := newRig(b, is, nil)
	raw := es.sign(b, claims(is.url, t0), header{})
	ctx := context.Background()
	if _, err := r.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	es := newES256(b)
	is := newIssuer(b, es)
	r := newRig(b, is, nil)
	raw := es.sign(b, claims(is.url, t0), header{})
	ctx := context.Background()
	if _, err := r.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Verify(ctx, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkVerifyES256Uncached(b *testing.B) { benchUncached(b, newES256(b)) }
func BenchmarkVerifyRS256Uncached(b *testing.B) { benchUncached(b, newRS256(b)) }

// benchUncached checks tokens in turn from a pool four times the cache's
// size: the first-in-first-out cache never holds the next one, so every
// check is a full one (hash, lookup, parse, signature, claims, store).
func benchUncached(b *testing.B, k *signer) {
	is := newIssuer(b, k)
	r := newRig(b, is, func(o *Options) { o.CacheSize = 16 })
	pool := make([]string, 64)
	for i := range pool {
		pool[i] = k.sign(b, with(claims(is.url, t0), "jti", fmt.Sprint("jti-", i)), header{})
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.Verify(ctx, pool[i%len(pool)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	if n := is.jwksHits.Load(); n != 1 {
		b.Fatalf("%d JWKS fetches", n)
	}
}
