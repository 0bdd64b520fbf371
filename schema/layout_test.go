package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

func TestBindHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  string
		want    string // signature
		wantErr string
	}{
		{"documented", "FailureDate,EventCount,DeviceId", "failure_date DATE,event_count BIGINT,device_id VARCHAR", ""},
		{"reordered and case", "eventcount,FAILUREDATE", "event_count BIGINT,failure_date DATE", ""},
		{"bom", "\ufeffFailureDate,Market", "failure_date DATE,market VARCHAR", ""},
		{"extra kept as string", "FailureDate,NewThing,New Thing", "failure_date DATE,new_thing VARCHAR,new_thing_2 VARCHAR", ""},
		{"aggregates", "FailureDate,SUM(EventCount),DCOUNT(DeviceId),avg(EventCount),MAX(FailureDateTime)",
			"failure_date DATE,sum_event_count BIGINT,dcount_device_id BIGINT,avg_event_count DOUBLE,max_failure_date_time TIMESTAMP", ""},
		{"undated aggregate", "DriverName,SUM(EventCount),DCOUNT(DeviceId)", "driver_name VARCHAR,sum_event_count BIGINT,dcount_device_id BIGINT", ""},
		{"duplicate", "FailureDate,FailureDate", "", "duplicated"},
		{"empty column", "FailureDate,,Market", "", "column 2 is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Bind(IHVDriver, strings.Split(tc.header, ","))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Signature(); got != tc.want {
				t.Errorf("signature\n got %s\nwant %s", got, tc.want)
			}
			if l.Dated() != strings.Contains(tc.want, "failure_date ") {
				t.Errorf("Dated() = %v", l.Dated())
			}
		})
	}
}

func TestConvertErrorsNameLineAndColumnNotValue(t *testing.T) {
	l, err := Bind(IHVDriver, []string{"FailureDate", "EventCount", "DeviceId"})
	if err != nil {
		t.Fatal(err)
	}
	secret := "s:SECRET-DEVICE"
	for _, tc := range []struct {
		rec  []string
		want error
		col  string
	}{
		{[]string{"2026-11-20", "many", secret}, ErrNotInteger, "EventCount"},
		{[]string{"SECRET-DATE", "1", secret}, ErrNotDate, "FailureDate"},
		{[]string{"", "1", secret}, ErrNotDate, "FailureDate"},
		{[]string{"2026-11-20", secret}, ErrFieldCount, ""},
	} {
		_, _, err := l.Convert(tc.rec, 7, nil)
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, tc.want) || fe.Line != 7 || fe.Column != tc.col {
			t.Fatalf("Convert(%d fields) err = %#v", len(tc.rec), err)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error leaks the value: %v", err)
		}
	}
}

// TestEncodeVerifyRoundTrip writes typed rows with parquet-go, checks them
// with arrow-go's reader, and reads the values back.
func TestEncodeVerifyRoundTrip(t *testing.T) {
	header := []string{"FailureDate", "FailureDateTime", "DeviceId", "EventCount", "SUM(EventCount)", "Extra"}
	l, err := Bind(IHVDriver, header)
	if err != nil {
		t.Fatal(err)
	}
	recs := [][]string{
		{"2026-11-20", "2026-11-20 10:11:12", "dev-a", "3", "7", "x"},
		{"11/20/2026", "2026-11-20T23:59:59Z", "", "1.0", "", ""},
	}
	var buf bytes.Buffer
	enc, err := l.NewEncoder(&buf, EncoderOptions{Metadata: map[string]string{"hdc.run": "r1"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		row, date, err := l.Convert(rec, i+2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := day(2026, 11, 20); date != want {
			t.Errorf("date = %d, want %d", date, want)
		}
		if err := enc.Write([]parquet.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(bytes.NewReader(buf.Bytes()), 2); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(bytes.NewReader(buf.Bytes()), 3); err == nil {
		t.Fatal("Verify accepted a wrong row count")
	}
	// A layout with different types must be rejected by Verify.
	other, _ := Bind(IHVDriver, []string{"FailureDate", "FailureName", "DeviceId", "EventCount", "SUM(EventCount)", "Extra"})
	if err := other.Verify(bytes.NewReader(buf.Bytes()), 2); err == nil {
		t.Fatal("Verify accepted a mismatched schema")
	}

	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	// Readers prune row groups by column-chunk min/max.
	for i, cc := range f.Metadata().RowGroups[0].Columns {
		if st := cc.MetaData.Statistics; len(st.MinValue) == 0 && len(st.MaxValue) == 0 && st.NullCount < 2 {
			t.Errorf("column %d has no min/max statistics", i)
		}
	}
	if v, ok := f.Lookup("hdc.run"); !ok || v != "r1" {
		t.Errorf("metadata hdc.run = %q, %v", v, ok)
	}
	rows := make([]parquet.Row, 2)
	n, _ := f.RowGroups()[0].Rows().ReadRows(rows)
	if n != 2 {
		t.Fatalf("read %d rows", n)
	}
	if got := rows[0][1].Int64(); got != time.Date(2026, 11, 20, 10, 11, 12, 0, time.UTC).UnixMilli() {
		t.Errorf("timestamp = %d", got)
	}
	if !rows[1][2].IsNull() || rows[1][3].Int64() != 1 || rows[0][4].Int64() != 7 {
		t.Errorf("row values: %v / %v", rows[0], rows[1])
	}
}

func TestEncoderDeterministic(t *testing.T) {
	l, _ := Bind(OEMDriver, []string{"FailureDate", "Model", "EventCount"})
	enc := func() []byte {
		var buf bytes.Buffer
		e, _ := l.NewEncoder(&buf, EncoderOptions{Metadata: map[string]string{"b": "2", "a": "1"}})
		for i := 0; i < 100; i++ {
			row, _, _ := l.Convert([]string{"2026-11-01", "M" + string(rune('a'+i%5)), "5"}, i+2, nil)
			_ = e.Write([]parquet.Row{row})
		}
		_ = e.Close()
		return buf.Bytes()
	}
	if !bytes.Equal(enc(), enc()) {
		t.Fatal("same rows gave different bytes")
	}
}

// TestEncodingFollowsCardinality: a string column whose values are mostly
// distinct (a device id) is written PLAIN, one that repeats (a market)
// with a dictionary, and a file too small to judge keeps dictionaries. The
// values read back are the values written, whatever the encoding, across
// the rows the encoder held back to choose and those it streamed.
func TestEncodingFollowsCardinality(t *testing.T) {
	l, err := Bind(IHVDriver, []string{"FailureDate", "DeviceId", "Market", "CabIdHash"})
	if err != nil {
		t.Fatal(err)
	}
	encode := func(rows int) *parquet.File {
		var buf bytes.Buffer
		enc, err := l.NewEncoder(&buf, EncoderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		batch := make([]parquet.Row, 0, 100)
		for i := range rows {
			cab := "" // a cab on one row in three: NULLs do not count
			if i%3 == 0 {
				cab = fmt.Sprintf("cab-%d", i)
			}
			row, _, err := l.Convert([]string{"2026-11-01", fmt.Sprintf("s:dev-%d", i), []string{"US", "DE", "JP"}[i%3], cab}, i+2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if batch = append(batch, row); len(batch) == cap(batch) || i == rows-1 {
				if err := enc.Write(batch); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0] // the encoder must have copied what it keeps
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		if enc.Rows() != int64(rows) {
			t.Fatalf("Rows() = %d, want %d", enc.Rows(), rows)
		}
		f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	encodings := func(f *parquet.File) map[string]string {
		out := map[string]string{}
		for i, cc := range f.Metadata().RowGroups[0].Columns {
			var names []string
			for _, e := range cc.MetaData.Encoding {
				names = append(names, e.String())
			}
			out[l.Fields[i].Name] = strings.Join(names, ",")
		}
		return out
	}
	dict := func(e string) bool { return strings.Contains(e, "RLE_DICTIONARY") }

	big := encode(3000)
	got := encodings(big)
	if dict(got["device_id"]) || dict(got["cab_id_hash"]) || !dict(got["market"]) {
		t.Errorf("3,000 rows: encodings %v; want device_id and cab_id_hash plain, market dictionary", got)
	}
	rows := make([]parquet.Row, 3000)
	n, _ := big.RowGroups()[0].Rows().ReadRows(rows)
	if n != 3000 {
		t.Fatalf("read %d rows", n)
	}
	for _, i := range []int{0, 1023, 1024, 2999} {
		if got := string(rows[i][1].ByteArray()); got != fmt.Sprintf("s:dev-%d", i) {
			t.Errorf("row %d device_id = %q", i, got)
		}
		if got, want := rows[i][3].IsNull(), i%3 != 0; got != want {
			t.Errorf("row %d cab_id_hash null = %v", i, got)
		}
	}
	if got := encodings(encode(20)); !dict(got["device_id"]) || !dict(got["market"]) {
		t.Errorf("20 rows: encodings %v; want dictionaries", got)
	}
}

// TestRepeatsAcrossTheFileKeepADictionary: a column of 6,000 values drawn
// 20,000 times looks mostly distinct in the first 1,024 rows, but repeats
// over the whole file, so a file that says how many rows it will hold
// keeps its dictionary; a unique column stays PLAIN either way.
func TestRepeatsAcrossTheFileKeepADictionary(t *testing.T) {
	l, err := Bind(IHVDriver, []string{"CabIdHash", "DeviceId"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]parquet.Row, sampleRows)
	for i := range rows {
		rows[i], _, _ = l.Convert([]string{fmt.Sprintf("cab-%d", rng.IntN(6000)), fmt.Sprintf("dev-%d", i)}, i+2, nil)
	}
	if got := plainColumns(l.Fields, rows, 20_000); got[0] || !got[1] {
		t.Errorf("20,000-row file: plain = %v, want [false true]", got)
	}
	if got := plainColumns(l.Fields, rows, 0); !got[0] || !got[1] {
		t.Errorf("file of unknown size: plain = %v, want [true true]", got)
	}
	for _, tc := range []struct {
		n, d   int
		lo, hi float64
	}{{1024, 943, 5500, 7000}, {1024, 3, 3, 3.01}, {1024, 1000, 18000, 26000}} {
		if k := distinct(tc.n, tc.d); k < tc.lo || k > tc.hi {
			t.Errorf("distinct(%d, %d) = %.0f, want %.0f..%.0f", tc.n, tc.d, k, tc.lo, tc.hi)
		}
	}
	if k := distinct(1024, 1024); !math.IsInf(k, 1) {
		t.Errorf("distinct(1024, 1024) = %v, want +Inf", k)
	}
}

// TestColumnsWithoutDictionaryCompressFast checks which columns get zstd's
// fastest level: those without a dictionary, and only when the file is zstd.
func TestColumnsWithoutDictionaryCompressFast(t *testing.T) {
	l, err := Bind(IHVDriver, []string{"FailureDate", "DeviceId", "Market", "EventCount"})
	if err != nil {
		t.Fatal(err)
	}
	plain := []bool{false, true, false, false}
	for _, fast := range []bool{true, false} {
		var codec compress.Codec
		if fast {
			codec = zstdFast
		}
		s := parquetSchema("v", l.Fields, plain, codec)
		for _, f := range l.Fields {
			col, ok := s.Lookup(f.Name)
			if !ok {
				t.Fatalf("no column %s", f.Name)
			}
			want := codec
			if f.Name == "market" { // the dictionary column keeps the file's codec
				want = nil
			}
			if got := col.Node.Compression(); got != want {
				t.Errorf("fast %v: %s compressed with %v, want %v", fast, f.Name, got, want)
			}
		}
	}
}
