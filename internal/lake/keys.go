package lake

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The lake's object layout (see ARCHITECTURE.md, "The lake contract"). All
// keys are relative to the sink's root; every key that holds or describes
// data of one date carries a "date=YYYY-MM-DD" segment, which is what the
// purge goes by.
const (
	StateDir    = "_hdc" // runner state, outside every table location
	ManifestDir = StateDir + "/manifests"
	commitDir   = StateDir + "/commits"
	schemaDir   = StateDir + "/schemas"
	bindingDir  = StateDir + "/reports"
	// LeaseDir holds one object per lease epoch: "_hdc/lease/0000000042.json".
	LeaseDir = StateDir + "/lease/"
	// AuditDir holds the purge audit records. They carry prefixes and
	// counts, never row content or full keys, and hold no date segment: an
	// auditor can read them long after the data is gone.
	AuditDir = StateDir + "/audit/purge"
	// DoctorDir holds doctor's probe objects while it runs.
	DoctorDir = StateDir + "/doctor/"
	// ProbeDir holds the S3 sink's create-only probe objects.
	ProbeDir = StateDir + "/probe/"

	dateLayout = time.DateOnly // partition dates
	partFile   = "part-00000.parquet"

	// QuarantineDir holds the bad rows: <dataset>/date=YYYY-MM-DD/<report>-<run>.tsv.
	QuarantineDir = StateDir + "/quarantine"

	CabDir      = "cabs"
	CabIndexDir = "cab_index"
	cabStateDir = StateDir + "/cabstate"
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

// ParseDate parses YYYY-MM-DD strictly: the spelling Date.String gives.
func ParseDate(s string) (Date, error) {
	d, ok := parseLooseDate(s)
	if !ok || d.String() != s {
		return 0, fmt.Errorf("partition date %q is not YYYY-MM-DD", s)
	}
	return d, nil
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
	return ManifestDir + "/" + dataset + "/date=" + d.String() + ".json"
}

// CommitKey is a run's commit record, written last; it is filed under the
// run's own date so it ages out with the data it covered.
func CommitKey(dataset string, reportID int64, run time.Time) string {
	return fmt.Sprintf("%s/%s/date=%s/%d-%s.json", commitDir, dataset, DateOf(run), reportID, RunID(run))
}

// QuarantineKey holds a run's rows of date d that did not parse.
func QuarantineKey(dataset string, d Date, reportID int64, run string) string {
	return fmt.Sprintf("%s/%s/date=%s/%d-%s.tsv", QuarantineDir, dataset, d, reportID, run)
}

// RunID names a report run by its time: "20261121T020000Z". Run ids
// order runs.
func RunID(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// KeyDate returns the date of the first "date=" segment of key, and
// whether key has one that can be read with certainty. See DateOfKey.
func KeyDate(key string) (Date, bool) {
	d, st := DateOfKey(key)
	return d, st == Dated
}

// Dating is what a key says about its date.
type Dating uint8

const (
	Undated   Dating = iota // no "date=" segment: runner state, or not ours
	Dated                   // a "date=" segment read with certainty
	Undatable               // a "date=" segment that cannot be read with certainty
)

// DateOfKey reads the "date=" segments of key, in any letter case
// ("DATE=", "Date="), with or without zero padding ("2026-1-5"), and
// with an extension after the date (".json"). The year has four digits,
// month and day one or two, and the date must exist. A key with several
// "date=" segments is dated by the oldest (a reader of the inner folder
// sees that partition); one segment that cannot be read makes the key
// Undatable. The key need not be
// a valid sink key: retention reads every key a store holds, including
// ones the sink would never write, because a query engine still reads
// them as partitions.
func DateOfKey(key string) (Date, Dating) {
	oldest, st := Date(0), Undated
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
			return 0, Undatable
		}
		if st == Undated || d < oldest {
			oldest, st = d, Dated
		}
	}
	return oldest, st
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

// CabKey is where a cab lands: "cabs/date=YYYY-MM-DD/<cabIdHash>.cab", under
// the failure date of the first row that referenced it. cabIDHash must be
// normalised (see NormalizeCabID).
func CabKey(d Date, cabIDHash string) string {
	return CabDir + "/date=" + d.String() + "/" + cabIDHash + ".cab"
}

// CabIndexKey is the cab index partition of date d.
func CabIndexKey(d Date) string { return CabIndexDir + "/date=" + d.String() + "/" + partFile }

// CabStateKey records the partition manifest run whose cabs are all done.
func CabStateKey(dataset string, d Date) string {
	return cabStateDir + "/" + dataset + "/date=" + d.String() + ".json"
}

// ParseCabKey is the inverse of CabKey; it rejects anything else.
func ParseCabKey(key string) (Date, string, bool) {
	rest, ok := strings.CutPrefix(key, CabDir+"/date=")
	if !ok || len(rest) < len(dateLayout)+1 || rest[len(dateLayout)] != '/' {
		return 0, "", false
	}
	d, err := ParseDate(rest[:len(dateLayout)])
	if err != nil {
		return 0, "", false
	}
	id, ok := strings.CutSuffix(rest[len(dateLayout)+1:], ".cab")
	if norm, valid := NormalizeCabID(id); !ok || !valid || norm != id {
		return 0, "", false
	}
	return d, id, true
}

// NormalizeCabID checks a CabIdHash against its documented shape, a GUID
// (8-4-4-4-12 hex digits, any case), and returns it in lower case. Anything
// else (path segments, separators, percent-encoding, non-ASCII, any other
// length) is refused, so a value from a report never becomes part of a key
// unless it is exactly 36 safe characters.
func NormalizeCabID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

// SchemaKey is where a dataset's column record lives (see DatasetSchema).
func SchemaKey(dataset string) string { return schemaDir + "/" + dataset + ".json" }

// BindingKey is where a configured report's Binding lives.
func BindingKey(report string) string { return bindingDir + "/" + report + ".json" }

// LeaseKey is the lease object of one epoch.
func LeaseKey(epoch int64) string { return fmt.Sprintf("%s%010d.json", LeaseDir, epoch) }

// AuditKey is a purge audit record, named by the purge's time and runner.
func AuditKey(t time.Time, runner string) string {
	return fmt.Sprintf("%s/%s-%s.json", AuditDir, t.UTC().Format("20060102T150405.000000000Z"), SafeName(runner))
}

// stateKeys are the shapes of the undated keys the runner writes: lease
// and audit records, schema and binding records, doctor's probes, and the
// S3 sink's create-only probes.
var stateKeys = regexp.MustCompile(`^_hdc/(` +
	`lease/[0-9]{10}\.json|` +
	`audit/purge/[0-9]{8}T[0-9]{6}\.[0-9]{9}Z-[A-Za-z0-9._-]+\.json|` +
	`(schemas|reports)/[a-z][a-z0-9_]{0,62}\.json|` +
	`doctor/[0-9a-f]{12}/(probe|lease|multipart)|` +
	`probe/create-only-[0-9a-f]+` +
	`)$`)

// IsState reports whether an undated key is one the runner writes, which
// holds no report data (see stateKeys). Anything else undated under the
// lake is not the runner's: retention reports it.
func IsState(key string) bool { return stateKeys.MatchString(key) }

// DatePrefix cuts a key after its "date=" segment, without an extension:
// "cabs/date=2026-10-01/x.cab" → "cabs/date=2026-10-01". A key without
// one is returned whole.
func DatePrefix(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		if len(s) >= len("date=") && strings.EqualFold(s[:len("date=")], "date=") {
			return strings.TrimSuffix(strings.Join(segs[:i+1], "/"), ".json")
		}
	}
	return key
}

// SafeName keeps a runner id usable in a key.
func SafeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
	if s == "" || strings.Trim(s, ".") == "" {
		return "runner"
	}
	return s
}
