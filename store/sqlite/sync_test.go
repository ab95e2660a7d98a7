package sqlite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncData: a file's data syncs; a closed file's sync fails with an
// error that names the file.
func TestSyncData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if err := syncData(f); err != nil {
		t.Fatalf("syncData: %v", err)
	}
	f.Close()
	if err := syncData(f); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("syncData of a closed file: %v, want an error naming %s", err, path)
	}
}
