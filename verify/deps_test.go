package verify

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies keeps the package importable by a business backend
// without mplogin's stores, drivers or metrics: beside the standard
// library it may use go-jose and nothing of this module.
func TestDependencies(t *testing.T) {
	// The go tool of the tree that built this test, so that it reads the
	// module as this build did.
	//lint:ignore SA1019 the build's own root is the one wanted here
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	self := false
	for _, d := range deps {
		switch {
		case d == "github.com/mplogin/mplogin/verify":
			self = true
		case strings.HasPrefix(d, "github.com/mplogin/mplogin"),
			strings.Contains(d, "pgx"), strings.Contains(d, "redis"), strings.Contains(d, "sqlite"),
			!strings.HasPrefix(d, "github.com/go-jose/go-jose/v4"):
			t.Errorf("verify depends on %s", d)
		}
	}
	if !self {
		t.Fatalf("go list did not list the package itself: %q", deps)
	}
}
