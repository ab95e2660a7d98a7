package platform_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mplogin/mplogin/platform"
)

func TestKindOf(t *testing.T) {
	if k := platform.KindOf(&platform.Error{Kind: platform.KindCodeUsed}); k != platform.KindCodeUsed {
		t.Fatal(k)
	}
	if k := platform.KindOf(context.DeadlineExceeded); k != platform.KindUnavailable {
		t.Fatal(k)
	}
	if k := platform.KindOf(errors.New("x")); k != platform.KindUnknown {
		t.Fatal(k)
	}
	for _, k := range []platform.Kind{platform.KindInvalidCode, platform.KindCodeUsed, platform.KindUserBlocked, platform.KindRateLimited} {
		if !k.UserError() {
			t.Errorf("%v should be a user error", k)
		}
	}
	for _, k := range []platform.Kind{platform.KindBusy, platform.KindUnavailable, platform.KindBadCredentials, platform.KindUnknown} {
		if k.UserError() {
			t.Errorf("%v should not be a user error", k)
		}
	}
}
