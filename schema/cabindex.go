package schema

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/internal/version"
)

// CabIndexTable names the cab index table in its files' metadata
// ("hdc.table"). The lake keeps the table under the folder of the same
// name (lake.CabIndexDir).
const CabIndexTable = "cab_index"

// CabIndexRow is one row of the cab index (cab_index/date=D/part-00000.parquet):
// a mirrored cab, its key, size and MD5, and the times its report rows
// gave. Analysts join it to the failures on cab_id_hash. Timestamps are
// INT64 milliseconds adjusted to UTC, the date a DATE, no unsigned types,
// like every table of the lake.
type CabIndexRow struct {
	CabIDHash      string     `parquet:"cab_id_hash,string"`
	Key            string     `parquet:"key,string"`
	Size           int64      `parquet:"size,int(64)"`
	MD5            string     `parquet:"md5,string"` // lower-case hex
	CollectionTime *time.Time `parquet:"cab_collection_time,timestamp(millisecond:utc)"`
	ExpirationTime *time.Time `parquet:"cab_expiration_time,timestamp(millisecond:utc)"`
	FailureDate    int32      `parquet:"failure_date,date"`
	Dataset        string     `parquet:"dataset,string,dict"`
	View           string     `parquet:"view,string,dict"`
}

// Equal reports whether r and o are stored as the same row: times are
// compared to the millisecond, as the file holds them.
func (r CabIndexRow) Equal(o CabIndexRow) bool {
	return r.CabIDHash == o.CabIDHash && r.Key == o.Key && r.Size == o.Size && r.MD5 == o.MD5 &&
		sameMillis(r.CollectionTime, o.CollectionTime) && sameMillis(r.ExpirationTime, o.ExpirationTime) &&
		r.FailureDate == o.FailureDate && r.Dataset == o.Dataset && r.View == o.View
}

// cabIndexLayout describes the index's columns for Layout.Verify, the
// independent (arrow-go) check every written index passes.
var cabIndexLayout = &Layout{Fields: []Field{
	{Name: "cab_id_hash", Type: String},
	{Name: "key", Type: String},
	{Name: "size", Type: Int64},
	{Name: "md5", Type: String},
	{Name: "cab_collection_time", Type: Timestamp},
	{Name: "cab_expiration_time", Type: Timestamp},
	{Name: "failure_date", Type: Date},
	{Name: "dataset", Type: String},
	{Name: "view", Type: String},
}}

// EncodeCabIndex writes rows, sorted by cab_id_hash, as one Parquet file
// and checks it with arrow-go's reader. Equal rows give equal bytes.
func EncodeCabIndex(rows []CabIndexRow, compression string) ([]byte, error) {
	codec, err := Codec(compression)
	if err != nil {
		return nil, err
	}
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b CabIndexRow) int { return strings.Compare(a.CabIDHash, b.CabIDHash) })
	for i := range rows {
		rows[i].CollectionTime = truncMillis(rows[i].CollectionTime)
		rows[i].ExpirationTime = truncMillis(rows[i].ExpirationTime)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[CabIndexRow](&buf,
		parquet.Compression(codec),
		parquet.DataPageStatistics(true),
		createdBy(version.String()),
		parquet.KeyValueMetadata("hdc.schema_version", Version),
		parquet.KeyValueMetadata("hdc.table", CabIndexTable),
	)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("write cab index: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close cab index: %w", err)
	}
	if err := cabIndexLayout.Verify(bytes.NewReader(buf.Bytes()), int64(len(rows))); err != nil {
		return nil, fmt.Errorf("cab index: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeCabIndex reads an index file.
func DecodeCabIndex(b []byte) ([]CabIndexRow, error) {
	rows, err := parquet.Read[CabIndexRow](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("read cab index: %w", err)
	}
	return rows, nil
}

func truncMillis(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := time.UnixMilli(t.UnixMilli()).UTC()
	return &u
}

func sameMillis(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.UnixMilli() == b.UnixMilli()
}
