// Package testutil holds small helpers that several packages' tests share.
package testutil

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer that a logger or a child process may write to
// while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far; "" for a nil Buffer.
func (b *Buffer) String() string {
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// NoLeak fails t when err's text, in any format, holds one of values (a
// secret, a token, a code).
func NoLeak(t testing.TB, err error, values ...string) {
	t.Helper()
	if err == nil {
		return
	}
	text := err.Error() + fmt.Sprintf(" %+v %#v %v", err, err, err)
	for _, v := range values {
		if v != "" && strings.Contains(text, v) {
			t.Fatalf("%q leaks into the error: %s", v, text)
		}
	}
}
