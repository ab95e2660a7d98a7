package sqlite_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store/sqlite"
	"github.com/mplogin/mplogin/store/storetest"
)

// TestEraseLeavesNoTrace erases a user and then reads every row of every
// table as text: none may hold the user's openids, unionid or id, nor the
// sealed phone number.
func TestEraseLeavesNoTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := mustOpen(t, path, sqlite.Options{})
	f := storetest.WriteEraseFixture(t, s)
	if err := s.EraseUser(t.Context(), f.UserID, time.Now()); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	var tables []string
	rows, err := db.QueryContext(t.Context(), `SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	needles := append([]string{f.UnionID, f.UserID}, f.OpenIDs...)
	var kept bool
	for _, table := range tables {
		rows, err := db.QueryContext(t.Context(), `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				default:
					b = fmt.Append(nil, v)
				}
				if bytes.Contains(b, f.SealedPhone) || bytes.Contains(b, f.PhoneLookup) {
					t.Errorf("%s.%s holds the sealed phone or its lookup", table, cols[i])
				}
				for _, n := range needles {
					if strings.Contains(string(b), n) {
						t.Errorf("%s.%s holds %q", table, cols[i], n)
					}
				}
				if string(b) == f.Kept {
					kept = true
				}
			}
		}
		rows.Close()
	}
	if !kept {
		t.Error("the other user is gone too")
	}
}
