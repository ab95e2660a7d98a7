package storetest

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// Column is one column of a table as a SQL backend's catalogue describes
// it: its name and the type the catalogue gives.
type Column struct{ Name, Type string }

// SchemaRules is what CheckSchema holds a SQL backend's schema to.
type SchemaRules struct {
	// Tables is every table with its columns in order: a new table or
	// column is a deliberate change of this list.
	Tables map[string][]string
	// Secret names the columns, as "table.column", that carry secret
	// material (hashes, values sealed by the caller).
	Secret map[string]bool
	// BlobType is the catalogue's type of a byte column. Secret columns
	// have it, and no other column does: text in clear is never a secret.
	BlobType string
	// TimeType, when set, is the type every column named *_at or until
	// must have.
	TimeType string
}

// CheckSchema checks tables, every table of a backend's schema with its
// columns in order, against rules: the tables and columns are exactly those
// of rules.Tables, only the secret columns are byte columns, no column is
// named like a secret in clear (token, secret, code), and times have
// rules.TimeType.
func CheckSchema(t testing.TB, tables map[string][]Column, rules SchemaRules) {
	t.Helper()
	got, want := slices.Sorted(maps.Keys(tables)), slices.Sorted(maps.Keys(rules.Tables))
	if !slices.Equal(got, want) {
		t.Fatalf("tables %v, want %v", got, want)
	}
	for _, table := range want {
		var names []string
		for _, c := range tables[table] {
			names = append(names, c.Name)
			if (c.Type == rules.BlobType) != rules.Secret[table+"."+c.Name] {
				t.Errorf("%s.%s has type %s", table, c.Name, c.Type)
			}
			// Every time keeps its zone and microseconds.
			if rules.TimeType != "" && (strings.HasSuffix(c.Name, "_at") || c.Name == "until") && c.Type != rules.TimeType {
				t.Errorf("%s.%s has type %s, want %s", table, c.Name, c.Type, rules.TimeType)
			}
			if strings.Contains(c.Name, "token") || strings.Contains(c.Name, "secret") || c.Name == "code" {
				t.Errorf("%s.%s: a column named like a secret in clear", table, c.Name)
			}
		}
		if !slices.Equal(names, rules.Tables[table]) {
			t.Errorf("%s columns %v, want %v", table, names, rules.Tables[table])
		}
	}
}
