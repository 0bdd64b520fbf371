package pipeline

import (
	"fmt"
	"strings"
	"time"
)

// The lake's object layout (see ARCHITECTURE.md, "The lake contract"). All
// keys are relative to the sink's root; every key that holds or describes
// data of one date carries a "date=YYYY-MM-DD" segment, which is what the
// purge goes by.
const (
	stateDir    = "_hdc" // runner state, outside every table location
	manifestDir = "_hdc/manifests"
	commitDir   = "_hdc/commits"
	dateLayout  = time.DateOnly // partition dates
	partFile    = "part-00000.parquet"
)

// Date is a UTC calendar date in days since 1970-01-01 (the Parquet DATE
// representation).
type Date int32

// DateOf returns the UTC date of t.
func DateOf(t time.Time) Date { return Date(t.UTC().Unix() / 86400) }

// Time returns midnight UTC of d.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String formats d as YYYY-MM-DD.
func (d Date) String() string { return d.Time().Format(dateLayout) }

// ParseDate parses YYYY-MM-DD strictly.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || t.Format(dateLayout) != s {
		return 0, fmt.Errorf("partition date %q is not YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// PartitionPrefix is the folder of one dataset's date partition, with a
// trailing slash: "<dataset>/date=YYYY-MM-DD/".
func PartitionPrefix(dataset string, d Date) string {
	return dataset + "/date=" + d.String() + "/"
}

// DataKey is the one data file of a partition. A partition is a single
// file so that replacing it is one atomic put: a reader never sees rows of
// two runs at once.
func DataKey(dataset string, d Date) string { return PartitionPrefix(dataset, d) + partFile }

// ManifestKey records which run wrote a partition.
func ManifestKey(dataset string, d Date) string {
	return manifestDir + "/" + dataset + "/date=" + d.String() + ".json"
}

// CommitKey is a run's commit record, written last; it is filed under the
// run's own date so it ages out with the data it covered.
func CommitKey(dataset string, reportID int64, run time.Time) string {
	return fmt.Sprintf("%s/%s/date=%s/%d-%s.json", commitDir, dataset, DateOf(run), reportID, runID(run))
}

// QuarantineKey holds a run's rows of date d that did not parse.
func QuarantineKey(dataset string, d Date, reportID int64, run string) string {
	return fmt.Sprintf("%s/quarantine/%s/date=%s/%d-%s.tsv", stateDir, dataset, d, reportID, run)
}

func runID(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// KeyDate returns the date of the first "date=YYYY-MM-DD" segment of key
// (a trailing ".json" or other extension on the segment is allowed), and
// whether there is one. Keys without a date are runner state that holds no
// report data.
func KeyDate(key string) (Date, bool) {
	for _, seg := range strings.Split(key, "/") {
		v, ok := strings.CutPrefix(seg, "date=")
		if !ok {
			continue
		}
		if len(v) < len(dateLayout) {
			return 0, false
		}
		d, err := ParseDate(v[:len(dateLayout)])
		if err != nil || (len(v) > len(dateLayout) && v[len(dateLayout)] != '.') {
			return 0, false
		}
		return d, true
	}
	return 0, false
}
