package lake

import (
	"regexp"
	"testing"
	"time"
)

func TestKeyDate(t *testing.T) {
	d, _ := ParseDate("2026-11-20")
	run := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		key  string
		want Date
		ok   bool
	}{
		{DataKey("ihv_driver", d), d, true},
		{ManifestKey("ihv_driver", d), d, true},
		{CommitKey("ihv_driver", 1, run), d + 1, true},
		{"cabs/date=2026-11-20/abc.cab", d, true},
		{"_hdc/lease", 0, false},
		{"x/date=2026-13-01/part", 0, false},
		{"x/date=2026-11-20x/part", 0, false},
		{"x/date=2026-11/part", 0, false},
		{"x/notdate=2026-11-20/part", 0, false},
	} {
		got, ok := KeyDate(tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("KeyDate(%q) = %v, %v; want %v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzPartitionKeyRoundTrip(f *testing.F) {
	f.Add(int32(0), "ihv_driver")
	f.Add(int32(20777), "oem_driver")
	f.Add(int32(-1), "a")
	f.Fuzz(func(t *testing.T, days int32, dataset string) {
		d := Date(days)
		if y := d.Time().Year(); y < 1 || y > 9999 || !datasetName.MatchString(dataset) {
			return
		}
		for _, key := range []string{DataKey(dataset, d), ManifestKey(dataset, d)} {
			got, ok := KeyDate(key)
			if !ok || got != d {
				t.Fatalf("KeyDate(%q) = %v, %v; want %v", key, got, ok, d)
			}
		}
	})
}

func TestKeyDatingSpellings(t *testing.T) {
	d, _ := ParseDate("2026-10-01")
	for _, tc := range []struct {
		key  string
		want Dating
	}{
		{"ihv_driver/date=2026-10-01/part-00000.parquet", Dated},
		{"ihv_driver/DATE=2026-10-01/x.parquet", Dated},
		{"ihv_driver/Date=2026-10-1/x.parquet", Dated},
		{"ihv_driver/date=2026-10-01/back\\slash.parquet", Dated},
		{"ihv_driver/date=2026-10-01/\x01ctl", Dated},
		{"ihv_driver/date=2026-10-01/\xff\xfe", Dated},
		{"ihv_driver/date=2026-10-01/", Dated},
		{"_hdc/manifests/ihv_driver/date=2026-10-01.json", Dated},
		{"ihv_driver/date=2026-10-01x/p", Undatable},
		{"ihv_driver/date=26-10-01/p", Undatable},
		{"ihv_driver/date=2026-02-30/p", Undatable},
		{"ihv_driver/date=2026-10-001/p", Undatable},
		{"ihv_driver/date=/p", Undatable},
		{"ihv_driver/date=20261001/p", Undatable},
		{"ihv_driver/part.parquet", Undated},
		{"_hdc/lease/0000000001.json", Undated},
	} {
		got, st := DateOfKey(tc.key)
		if st != tc.want || st == Dated && got != d {
			t.Errorf("DateOfKey(%q) = %v, %v; want %v, %v", tc.key, got, st, d, tc.want)
		}
	}
}

var datasetName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

func TestDateOfKeyOldestSegment(t *testing.T) {
	old, _ := ParseDate("2020-01-01")
	if d, st := DateOfKey("snap/date=2026-12-01/ds/date=2020-01-01/part.parquet"); st != Dated || d != old {
		t.Errorf("two date segments: %v, %v; want the oldest, %v", d, st, old)
	}
	if _, st := DateOfKey("snap/date=2026-12-01/ds/date=bad/part.parquet"); st != Undatable {
		t.Errorf("one unreadable segment of two: %v, want Undatable", st)
	}
}

func TestIsStateOnlyTheRunnersKeys(t *testing.T) {
	for key, want := range map[string]bool{
		LeaseKey(42): true,
		AuditKey(time.Unix(0, 5).UTC(), "host-1"): true,
		SchemaKey("ihv_driver"):                   true,
		BindingKey("ihv_driver"):                  true,
		DoctorDir + "0123456789ab/probe":          true,
		ProbeDir + "create-only-00ff":             true,
		LeaseDir + "personal.csv":                 false,
		"exports/.tmp-devices.csv":                false,
		"_hdc/schemas/x/../../y.json":             false,
		"_hdc/doctor/0123456789ab/devices.csv":    false,
		"_hdc/reports/ihv_driver.json.bak":        false,
		"notes.txt":                               false,
	} {
		if got := IsState(key); got != want {
			t.Errorf("IsState(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestWindowBounds(t *testing.T) {
	now := time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)
	w := NewWindow(now, 30)
	for ds, want := range map[string]bool{"2026-10-22": false, "2026-10-23": true, "2026-11-21": true, "2026-11-22": true, "2026-11-23": false, "2099-01-01": false} {
		d, _ := ParseDate(ds)
		if w.Contains(d) != want {
			t.Errorf("window on %s holds %s: %v, want %v", now.Format(time.DateOnly), ds, !want, want)
		}
	}
}
