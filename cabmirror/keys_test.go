package cabmirror_test

import (
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// TestCabKeysAndIDs: the keys the mirror writes carry the date the purge
// goes by, and only GUIDs become keys.
func TestCabKeysAndIDs(t *testing.T) {
	d := lake.DateOf(t0)
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"1D7B4184-8f18-4207-88b5-36b276363eb5", "1d7b4184-8f18-4207-88b5-36b276363eb5", true},
		{"1d7b4184-8f18-4207-88b5-36b276363eb", "", false},
		{"1d7b41848f18-4207-88b5-36b276363eb5-", "", false},
		{"1d7b4184-8f18-4207-88b5-36b276363eg5", "", false},
		{"../1d7b4184-8f18-4207-88b5-36b27636", "", false},
		{"", "", false},
	} {
		got, ok := lake.NormalizeCabID(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeCabID(%q) = %q, %v", tc.in, got, ok)
		}
	}
	key := lake.CabKey(d, "1d7b4184-8f18-4207-88b5-36b276363eb5")
	if key != "cabs/date=2026-11-21/1d7b4184-8f18-4207-88b5-36b276363eb5.cab" {
		t.Errorf("CabKey = %q", key)
	}
	for _, k := range []string{key, lake.CabIndexKey(d), lake.CabStateKey("ihv_driver", d)} {
		if got, ok := lake.KeyDate(k); !ok || got != d {
			t.Errorf("KeyDate(%q) = %v, %v: the purge would not see it", k, got, ok)
		}
	}
}

// FuzzNormalizeCabID: whatever a report holds, an accepted value is a
// lower-case GUID, so the key it makes is always valid.
func FuzzNormalizeCabID(f *testing.F) {
	for _, s := range []string{"1d7b4184-8f18-4207-88b5-36b276363eb5", "../../etc/passwd", "a/b", "%2e%2e", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := lake.NormalizeCabID(s)
		if !ok {
			return
		}
		if len(id) != 36 || strings.Trim(id, "0123456789abcdef-") != "" || strings.Count(id, "-") != 4 {
			t.Fatalf("accepted %q as %q", s, id)
		}
		if err := sinks.ValidateKey(lake.CabKey(lake.DateOf(t0), id)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCabIndexTableName: the table name the index files carry is the
// folder the lake keeps them in.
func TestCabIndexTableName(t *testing.T) {
	if schema.CabIndexTable != lake.CabIndexDir {
		t.Errorf("schema.CabIndexTable %q, lake.CabIndexDir %q", schema.CabIndexTable, lake.CabIndexDir)
	}
}
