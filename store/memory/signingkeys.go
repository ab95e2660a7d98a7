package memory

import (
	"context"
	"fmt"

	"github.com/mplogin/mplogin/store"
)

// GetSigningKeys implements store.SigningKeys.
func (s *Store) GetSigningKeys(ctx context.Context) (store.SigningKeySet, error) {
	const op = "get signing keys"
	if err := s.lock(ctx, op); err != nil {
		return store.SigningKeySet{}, err
	}
	defer s.mu.Unlock()
	if s.signing == nil {
		return store.SigningKeySet{}, notFound(op)
	}
	set := *s.signing
	set.Sealed = clone(set.Sealed)
	return set, nil
}

// PutSigningKeys implements store.SigningKeys: the mutex makes the compare
// and the swap one step.
func (s *Store) PutSigningKeys(ctx context.Context, set store.SigningKeySet, prevVersion int64) (bool, error) {
	const op = "put signing keys"
	if len(set.Sealed) == 0 || set.Version <= 0 {
		return false, fmt.Errorf("memory: %s: empty sealed value or version not above 0", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	var cur int64
	if s.signing != nil {
		cur = s.signing.Version
	}
	if cur != prevVersion {
		return false, nil
	}
	set.Sealed = clone(set.Sealed)
	set.UpdatedAt = norm(set.UpdatedAt)
	s.signing = &set
	return true, nil
}
