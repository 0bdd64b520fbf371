// Package layering holds the test of the repository's one-way import
// rule (see ARCHITECTURE.md, "Packages"):
//
//		cmd → pipeline → cabmirror → {internal/lake, devcenter, schema, sinks}
//
//	  - sinks, schema and devcenter (with their subpackages) import neither
//	    pipeline, internal/lake, cabmirror, nor each other;
//	  - internal/lake imports none of pipeline and cabmirror, and cabmirror
//	    does not import pipeline;
//	  - only cmd imports a concrete sink (sinks/local, sinks/s3), and only cmd
//	    imports the Dev Center emulator.
//
// Tests and test-support packages (named *test) may import what they need.
package layering

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/hdc-export/hdc-export/"

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Imports    []string
}

// rule forbids packages under from to import packages under any of to.
type rule struct {
	from []string
	to   []string
	why  string
}

var rules = []rule{
	{[]string{"sinks"}, []string{"pipeline", "internal/lake", "cabmirror", "schema", "devcenter"}, "sinks is a leaf: the storage contract"},
	{[]string{"schema"}, []string{"pipeline", "internal/lake", "cabmirror", "sinks", "devcenter"}, "schema is a leaf: datasets and Parquet tables"},
	{[]string{"devcenter"}, []string{"pipeline", "internal/lake", "cabmirror", "sinks", "schema"}, "devcenter is a leaf: the API client"},
	{[]string{"internal/lake"}, []string{"pipeline", "cabmirror", "cmd"}, "the lake's layout knows nothing of the cycle"},
	{[]string{"cabmirror"}, []string{"pipeline", "cmd"}, "the cab stage is called by the cycle, never the reverse"},
	{[]string{"pipeline"}, []string{"cmd"}, "cmd is the composition root"},
	{[]string{"internal/retry"}, []string{""}, "the retry policy imports nothing of ours, so every HTTP caller can use it"},
	{[]string{""}, []string{"sinks/local", "sinks/s3"}, "only cmd knows every concrete sink"},
	{[]string{""}, []string{"devcenter/emulator"}, "only cmd serves the emulator"},
}

// exempt are importers the rules do not cover: the composition root, the
// packages themselves, and test support.
func exempt(importer, imported string) bool {
	switch {
	case under(importer, "cmd"):
		return true
	case under(importer, imported): // a package and its own subpackages
		return true
	case strings.HasSuffix(importer, "test"): // test support: miniotest, sinktest, devcentertest, s3faulttest
		return true
	}
	return false
}

// under reports whether rel (a path relative to the module) is dir or
// below it; "" is the whole module.
func under(rel, dir string) bool {
	return dir == "" || rel == dir || strings.HasPrefix(rel, dir+"/")
}

func TestImportsPointOneWay(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	n := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		for _, v := range violations(p) {
			t.Error(v)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if n < 10 {
		t.Fatalf("go list found %d packages: the test reads nothing", n)
	}
}

// violations lists the rules p's (non-test) imports break.
func violations(p pkg) []string {
	from, ok := strings.CutPrefix(p.ImportPath, module)
	if !ok {
		return nil
	}
	var out []string
	for _, imp := range p.Imports {
		to, ok := strings.CutPrefix(imp, module)
		if !ok || exempt(from, to) {
			continue
		}
		for _, r := range rules {
			if !matches(from, r.from) || !matches(to, r.to) {
				continue
			}
			out = append(out, from+" imports "+to+": "+r.why)
		}
	}
	return out
}

func matches(rel string, dirs []string) bool {
	for _, d := range dirs {
		if under(rel, d) {
			return true
		}
	}
	return false
}

// TestRulesCatchABreak: each rule fires on an import that breaks it, and
// the exemptions hold, so that the test above can fail.
func TestRulesCatchABreak(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		broken   bool
	}{
		{"sinks/s3", "internal/lake", true},
		{"schema", "devcenter", true},
		{"devcenter", "sinks", true},
		{"internal/lake", "pipeline", true},
		{"cabmirror", "pipeline", true},
		{"pipeline", "sinks/local", true},
		{"pipeline", "devcenter/emulator", true},
		{"cabmirror", "sinks/s3", true},
		{"cmd/hdc-export", "sinks/s3", false},
		{"cmd/hdc-export", "devcenter/emulator", false},
		{"pipeline", "cabmirror", false},
		{"cabmirror", "internal/lake", false},
		{"sinks/s3/miniotest", "sinks/s3", false},
		{"devcenter/devcentertest", "devcenter/emulator", false},
		{"internal/lake", "sinks", false},
		{"internal/retry", "sinks", true},
		{"devcenter", "internal/retry", false},
	} {
		got := len(violations(pkg{ImportPath: module + tc.from, Imports: []string{module + tc.to}})) > 0
		if got != tc.broken {
			t.Errorf("%s importing %s: broken = %v, want %v", tc.from, tc.to, got, tc.broken)
		}
	}
}
