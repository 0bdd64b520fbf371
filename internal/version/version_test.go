package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/hdc-export/hdc-export", Version: "v0.0.0-20261205080830-5d1b183abcde+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "5d1b183abcdef0123456789abcdef0123456789a"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name         string
		bi           *debug.BuildInfo
		ldVer, ldRev string
		want         string
	}{
		{"vcs stamped", vcs, "", "", "hdc-export version v0.0.0-20261205080830-5d1b183abcde+dirty (build 5d1b183abcdef0123456789abcdef0123456789a, modified)"},
		{"release", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "", "", "hdc-export version v1.4.0 (build unknown)"},
		{"no build info", nil, "", "", "hdc-export version (devel) (build unknown)"},
		{"linker wins", vcs, "v2.0.0", "abc123", "hdc-export version v2.0.0 (build abc123)"},
		{"linker version only", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "v2.0.0", "", "hdc-export version v2.0.0 (build unknown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.ldVer, tc.ldRev).String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	if got := fromBuildInfo(vcs, "", "").GoVersion; got != "go1.26.8" {
		t.Errorf("GoVersion %q", got)
	}
}

// TestGetReadsThisBinary: a test binary has build information, and Get
// reports it the same way every time.
func TestGetReadsThisBinary(t *testing.T) {
	if _, ok := debug.ReadBuildInfo(); !ok {
		t.Fatal("no build information in the test binary")
	}
	i := Get()
	if i.Version == "" || i.GoVersion == "" || String() != i.String() {
		t.Errorf("Get() = %+v, String() = %q", i, String())
	}
}
