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

// KeyDate returns the date of the first "date=" segment of key, and
// whether key has one that can be read with certainty. See keyDating.
func KeyDate(key string) (Date, bool) {
	d, st := keyDating(key)
	return d, st == dated
}

// dating is what a key says about its date.
type dating uint8

const (
	undated   dating = iota // no "date=" segment: runner state, or not ours
	dated                   // a "date=" segment read with certainty
	undatable               // a "date=" segment that cannot be read with certainty
)

// keyDating reads the first "date=" segment of key, in any letter case
// ("DATE=", "Date="), with or without zero padding ("2026-1-5"), and
// with an extension after the date (".json"). The year has four digits,
// month and day one or two, and the date must exist. The key need not be
// a valid sink key: retention reads every key a store holds, including
// ones the sink would never write, because a query engine still reads
// them as partitions.
func keyDating(key string) (Date, dating) {
	for len(key) > 0 {
		seg := key
		if i := strings.IndexByte(key, '/'); i >= 0 {
			seg, key = key[:i], key[i+1:]
		} else {
			key = ""
		}
		if len(seg) < len("date=") || !strings.EqualFold(seg[:len("date=")], "date=") {
			continue
		}
		d, ok := parseLooseDate(seg[len("date="):])
		if !ok {
			return 0, undatable
		}
		return d, dated
	}
	return 0, undated
}

// parseLooseDate reads Y-M-D (four-digit year, one- or two-digit month
// and day) at the start of v, which may go on only with a '.' (an
// extension).
func parseLooseDate(v string) (Date, bool) {
	var parts [3]int
	for i := range parts {
		n, digits := 0, 0
		for digits < 4 && digits < len(v) && v[digits] >= '0' && v[digits] <= '9' {
			n = n*10 + int(v[digits]-'0')
			digits++
		}
		if i == 0 && digits != 4 || i > 0 && (digits < 1 || digits > 2) {
			return 0, false
		}
		parts[i], v = n, v[digits:]
		if i < 2 {
			if len(v) == 0 || v[0] != '-' {
				return 0, false
			}
			v = v[1:]
		}
	}
	if v != "" && v[0] != '.' {
		return 0, false
	}
	t := time.Date(parts[0], time.Month(parts[1]), parts[2], 0, 0, 0, 0, time.UTC)
	if t.Year() != parts[0] || int(t.Month()) != parts[1] || t.Day() != parts[2] {
		return 0, false
	}
	return DateOf(t), true
}
