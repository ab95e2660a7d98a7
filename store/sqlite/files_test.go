package sqlite_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/store/sqlite"
)

// TestNewFilesPrivate: the database, its WAL and shared-memory files and the
// lock file are created for their owner alone, whatever the umask lets
// through: they hold openids and token hashes.
func TestNewFilesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	var logged testutil.Buffer
	s := mustOpen(t, path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err := s.CreateSession(t.Context(), session("s1")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm", path + "-lock"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(name), err)
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s created with mode %v: group or others may read or write it", filepath.Base(name), perm)
		}
	}
	if strings.Contains(logged.String(), "level=WARN") {
		t.Errorf("a new database drew a warning:\n%s", logged.String())
	}
}

// TestOpenWarnsOfOpenFile: a database file that group or others may read or
// write is opened as it is, with a warning that names it.
func TestOpenWarnsOfOpenFile(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o660, 0o602} {
		path := filepath.Join(t.TempDir(), "old.db")
		mustOpen(t, path, sqlite.Options{}).Close()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		var logged testutil.Buffer
		s := mustOpen(t, path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		s.Close()
		var warning string
		for line := range strings.Lines(logged.String()) {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, path) {
				warning = line
			}
		}
		if warning == "" {
			t.Errorf("mode %v: no warning naming the file:\n%s", mode, logged.String())
		} else {
			t.Logf("mode %v: %s", mode, warning)
		}
	}
}
