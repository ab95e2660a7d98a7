package metrics_test

import (
	"strings"
	"testing"

	"github.com/mplogin/mplogin/metrics"
	"github.com/mplogin/mplogin/platform"
)

// TestResultCoversPlatformKinds keeps Result's closed set in step with
// platform.Kind, which metrics does not import.
func TestResultCoversPlatformKinds(t *testing.T) {
	for k := platform.Kind(0); !strings.HasPrefix(k.String(), "Kind("); k++ {
		if got := metrics.Result(k.String()); got != k.String() {
			t.Errorf("Result(%q) = %q: add the kind to Result", k.String(), got)
		}
	}
}
