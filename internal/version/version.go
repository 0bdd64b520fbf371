// Package version says which build of hdc-export is running: the one
// string that `hdc-export version` prints, Parquet files carry in their
// created_by and the hdc_build_info metric labels.
//
// It reads the Go build information (runtime/debug.ReadBuildInfo): the
// main module's version and the VCS revision that `go build` stamps when it
// builds inside a Git checkout (-buildvcs, on by default). Builds without a
// checkout (a container build context, GOFLAGS=-buildvcs=false) can stamp
// both with the linker instead:
//
//	go build -ldflags "-X github.com/hdc-export/hdc-export/internal/version.version=v1.2.3 \
//	  -X github.com/hdc-export/hdc-export/internal/version.revision=$(git rev-parse HEAD)"
//
// Values set by the linker win over the build information.
package version

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set by -ldflags -X (see the package comment); empty otherwise.
var (
	version  string
	revision string
)

// Info is what a build says of itself.
type Info struct {
	Version   string // module version ("v1.2.3", a pseudo-version, or "(devel)")
	Revision  string // VCS revision (commit hash), "" when unknown
	Modified  bool   // the working tree had uncommitted changes
	GoVersion string // the Go toolchain that built it
}

// String is the version string: "hdc-export version V (build R)", the
// form Parquet readers parse from created_by, with ", modified" after the
// revision of a build from a changed tree and "unknown" for a revision
// nobody stamped.
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	if i.Modified {
		rev += ", modified"
	}
	return "hdc-export version " + i.Version + " (build " + rev + ")"
}

var (
	once    sync.Once
	current Info
)

// Get returns this process's build information.
func Get() Info {
	once.Do(func() {
		bi, _ := debug.ReadBuildInfo()
		current = fromBuildInfo(bi, version, revision)
	})
	return current
}

// String is Get().String().
func String() string { return Get().String() }

// fromBuildInfo reads bi (nil when the binary has none), then applies the
// linker's values.
func fromBuildInfo(bi *debug.BuildInfo, ldVersion, ldRevision string) Info {
	i := Info{Version: "(devel)", GoVersion: runtime.Version()}
	if bi != nil {
		if bi.Main.Version != "" {
			i.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			i.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if ldVersion != "" {
		i.Version = ldVersion
	}
	if ldRevision != "" {
		i.Revision, i.Modified = ldRevision, false
	}
	return i
}
