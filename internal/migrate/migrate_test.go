package migrate_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mplogin/mplogin/internal/migrate"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// Files come back in version order, not name order, with their text; files
// that are not .sql, or not in the directory, are not migrations.
func TestLoadOrdersByVersion(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0010_ten.sql":   file("CREATE TABLE ten ();"),
		"m/0002_two.sql":   file("CREATE TABLE two ();"),
		"m/1_one.sql":      file("CREATE TABLE one ();"),
		"m/README":         file("not a migration"),
		"other/0003_x.sql": file("elsewhere"),
	}
	ms, err := migrate.Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Name)
	}
	if want := "1_one.sql 0002_two.sql 0010_ten.sql"; strings.Join(got, " ") != want {
		t.Fatalf("loaded %v, want %s", got, want)
	}
	if ms[1].Version != 2 || ms[1].SQL != "CREATE TABLE two ();" {
		t.Fatalf("second migration %+v", ms[1])
	}
}

func TestLoadRefusesBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number":      {"m/init.sql": file("")},
		"no underscore":  {"m/0001.sql": file("")},
		"zero":           {"m/0000_zero.sql": file("")},
		"negative":       {"m/-1_neg.sql": file("")},
		"shared version": {"m/0001_a.sql": file(""), "m/001_b.sql": file("")},
	} {
		if ms, err := migrate.Load(fsys, "m"); err == nil {
			t.Errorf("%s: loaded %v", name, ms)
		}
	}
	if ms, err := migrate.Load(fstest.MapFS{}, "m"); err != nil || len(ms) != 0 {
		t.Errorf("empty directory: %v, %v", ms, err)
	}
}

func TestPending(t *testing.T) {
	ms := []migrate.Migration{{Version: 1, Name: "0001_a.sql"}, {Version: 2, Name: "0002_b.sql"}, {Version: 3, Name: "0003_c.sql"}}
	for _, c := range []struct {
		applied []int
		want    string
	}{
		{nil, "1 2 3"},
		{[]int{1}, "2 3"},
		{[]int{2}, "1 3"},
		{[]int{3, 1, 2}, ""},
	} {
		todo, err := migrate.Pending(ms, c.applied)
		if err != nil {
			t.Fatalf("applied %v: %v", c.applied, err)
		}
		var got []string
		for _, m := range todo {
			got = append(got, strings.TrimLeft(m.Name[:4], "0"))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("applied %v: pending %v, want %s", c.applied, got, c.want)
		}
	}
	// A version this binary does not know: written by a newer one.
	_, err := migrate.Pending(ms, []int{1, 4})
	if err == nil || !strings.Contains(err.Error(), "database has migration 4") {
		t.Fatalf("applied 1 and 4: %v, want an error naming migration 4", err)
	}
}
