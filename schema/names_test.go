package schema

import "testing"

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"CPUName":          "cpu_name",
		"FailureDateTime":  "failure_date_time",
		"OSVersion":        "os_version",
		"CabIdHash":        "cab_id_hash",
		"SUM(EventCount)":  "sum_event_count",
		"DCOUNT(DeviceId)": "dcount_device_id",
		"Weird Name!":      "weird_name",
		"  ":               "col",
		"9lives":           "_9lives",
		"a--b":             "a_b",
		"Über":             "ber",
		"x86Arch":          "x86_arch",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
	// Every documented column's explicit name is what SnakeCase would give,
	// except where the generic rule cannot see word boundaries.
	exceptions := map[string]bool{"OSSKUType": true, "OEMName": false}
	for _, c := range IHVDriver.Columns {
		if got := SnakeCase(c.Source); got != c.Name && !exceptions[c.Source] {
			t.Errorf("SnakeCase(%q) = %q, table says %q", c.Source, got, c.Name)
		}
	}
}

func TestAggregate(t *testing.T) {
	for _, tc := range []struct{ in, fn, arg string }{
		{"SUM(EventCount)", "SUM", "EventCount"},
		{"sum(EventCount)", "SUM", "EventCount"},
		{" DCOUNT( DeviceId ) ", "DCOUNT", "DeviceId"},
		{"FOO(EventCount)", "", ""},
		{"EventCount", "", ""},
	} {
		fn, arg, ok := Aggregate(tc.in)
		if fn != tc.fn || arg != tc.arg || ok != (tc.fn != "") {
			t.Errorf("Aggregate(%q) = %q, %q, %v", tc.in, fn, arg, ok)
		}
	}
}
