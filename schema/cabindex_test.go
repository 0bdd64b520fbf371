package schema_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	arrowparquet "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	arrowschema "github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/hdc-export/hdc-export/schema"
)

func indexRows() []schema.CabIndexRow {
	d := int32(time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	coll := time.Date(2026, 11, 18, 7, 8, 9, 123456789, time.UTC)
	exp := coll.Add(30 * 24 * time.Hour)
	return []schema.CabIndexRow{
		{CabIDHash: "ffffffff-0000-4000-8000-000000000002", Key: "cabs/date=2026-11-18/ffffffff-0000-4000-8000-000000000002.cab",
			Size: 1 << 40, MD5: "00112233445566778899aabbccddeeff", CollectionTime: &coll, ExpirationTime: &exp,
			FailureDate: d, Dataset: "oem_driver", View: "OEMDriver"},
		{CabIDHash: "00000000-0000-4000-8000-000000000001", Key: "cabs/date=2026-11-18/00000000-0000-4000-8000-000000000001.cab",
			Size: 36, MD5: "ffeeddccbbaa99887766554433221100", FailureDate: d, Dataset: "ihv_driver", View: "IHVDriver"},
	}
}

// TestCabIndexDeterministic: the same cabs give the same bytes whatever
// their order, and the file reads back as written (times in ms, nulls kept).
func TestCabIndexDeterministic(t *testing.T) {
	rows := indexRows()
	a, err := schema.EncodeCabIndex(rows, "zstd")
	if err != nil {
		t.Fatal(err)
	}
	rev := slices.Clone(rows)
	slices.Reverse(rev)
	b, err := schema.EncodeCabIndex(rev, "zstd")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("equal rows in another order gave other bytes")
	}
	back, err := schema.DecodeCabIndex(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0].CabIDHash != rows[1].CabIDHash || back[1].Size != 1<<40 ||
		back[0].CollectionTime != nil || back[1].CollectionTime == nil ||
		back[1].CollectionTime.UnixMilli() != rows[0].CollectionTime.UnixMilli() ||
		back[1].CollectionTime.UnixNano()%int64(time.Millisecond) != 0 {
		t.Errorf("round trip: %+v", back)
	}
}

// TestCabIndexTypes reads the index with arrow-go, an implementation
// independent of the writer: DATE, TIMESTAMP(ms, UTC), signed BIGINT,
// strings, and nothing unsigned.
func TestCabIndexTypes(t *testing.T) {
	b, err := schema.EncodeCabIndex(indexRows(), "zstd")
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if pf.NumRows() != 2 {
		t.Errorf("%d rows", pf.NumRows())
	}
	sc := pf.MetaData().Schema
	got := map[string]string{}
	for i := range sc.NumColumns() {
		c := sc.Column(i)
		lt := c.LogicalType()
		switch l := lt.(type) {
		case arrowschema.TimestampLogicalType:
			if !l.IsAdjustedToUTC() || l.TimeUnit() != arrowschema.TimeUnitMillis || c.PhysicalType() != arrowparquet.Types.Int64 {
				t.Errorf("%s: %s", c.Name(), lt)
			}
			got[c.Name()] = "TIMESTAMP"
		case arrowschema.DateLogicalType:
			got[c.Name()] = "DATE"
		case arrowschema.IntLogicalType:
			if !l.IsSigned() || l.BitWidth() != 64 {
				t.Errorf("%s: %s", c.Name(), lt)
			}
			got[c.Name()] = "BIGINT"
		case arrowschema.StringLogicalType:
			got[c.Name()] = "VARCHAR"
		default:
			t.Errorf("%s: unexpected type %s / %s", c.Name(), c.PhysicalType(), lt)
		}
	}
	want := map[string]string{
		"cab_id_hash": "VARCHAR", "key": "VARCHAR", "size": "BIGINT", "md5": "VARCHAR",
		"cab_collection_time": "TIMESTAMP", "cab_expiration_time": "TIMESTAMP",
		"failure_date": "DATE", "dataset": "VARCHAR", "view": "VARCHAR",
	}
	if len(got) != len(want) {
		t.Errorf("columns %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s is %q, want %s", k, got[k], v)
		}
	}
}
