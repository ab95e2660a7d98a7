package session

import (
	"context"
	"time"
)

// OnKeyTried makes f run each time a session key is tried on user data,
// until the returned function restores the hook before.
func OnKeyTried(f func()) (restore func()) {
	old := keyTried
	keyTried = f
	return func() { keyTried = old }
}

// SetSleep replaces how s waits between looks at the store.
func SetSleep(s *Service, f func(context.Context, time.Duration) error) { s.sleep = f }
