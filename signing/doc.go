// Package signing holds the keys mplogin signs JWT access tokens with: it
// generates them, seals them with the master key for the store, rotates
// them on a schedule shared by every instance, and publishes their public
// halves as a JWK set.
//
// A key is next (published, not yet signing), current (signing) or
// previous (retired, still published). The first key of a deployment signs
// at once; every later key is published at least Lead (24 h) before it
// signs, so that every verifier's cached JWK set holds it by then. A key
// stops signing when its successor starts, and stays published until the
// longest JWT it may have signed has expired (the longest lifetime, the
// 30 s leeway, and the period in which another instance may not yet have
// reloaded the set), then leaves the set.
//
// Which key signs follows from the set and the clock alone: every instance
// switches to the next key when its time comes, without waiting for the
// store. The stored set changes only to add a next key and to drop retired
// ones; one instance does that under a lease and a compare-and-swap, and
// the others reload.
//
// The store sees the set only sealed (keyring, bound to its purpose), and
// no private key reaches a log line, an error or the JWK set: Key formats
// itself as its kid.
package signing
