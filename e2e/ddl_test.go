package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDDLViewsReadTheLake runs the DuckDB views that `hdc-export ddl`
// prints against a lake it built, and checks the Athena DDL names every
// column the view shows.
func TestDDLViewsReadTheLake(t *testing.T) {
	t.Parallel()
	lake := filepath.Join(t.TempDir(), "lake")
	runExport(t, lake, nil)
	out, err := exec.Command(hdcBinary(t), "ddl", "--config", filepath.Join(repoRoot(t), "configs", "demo.yaml"), "--location", lake).Output()
	if err != nil {
		t.Fatalf("hdc-export ddl: %v", err)
	}
	db := openDuckDB(t)
	for _, ds := range datasets {
		view := section(string(out), "-- "+ds.name+": DuckDB")
		if !strings.HasPrefix(view, "CREATE OR REPLACE VIEW") {
			t.Fatalf("%s: no DuckDB view in the ddl output:\n%s", ds.name, out)
		}
		if _, err := db.Exec(view); err != nil {
			t.Fatalf("%s: the printed view does not run: %v\n%s", ds.name, err, view)
		}
		var viaView, direct int64
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM "%s" WHERE date = failure_date`, ds.name)).Scan(&viaView); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT count(*) FROM " + datasetScan(lake, ds.name)).Scan(&direct); err != nil {
			t.Fatal(err)
		}
		if viaView == 0 || viaView != direct {
			t.Errorf("%s: the view reads %d rows (with date = failure_date), the lake holds %d", ds.name, viaView, direct)
		}
		athena := section(string(out), "-- "+ds.name+" (")
		for _, col := range queryStrings(t, db, fmt.Sprintf(`SELECT column_name FROM (DESCRIBE "%s") WHERE column_name <> 'date'`, ds.name)) {
			if !strings.Contains(athena, "`"+col+"` ") {
				t.Errorf("%s: the Athena DDL lacks column %s", ds.name, col)
			}
		}
	}
}

// section returns the lines after the line starting with head, up to the
// next blank line.
func section(out, head string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, head):
			in = true
		case in && line == "":
			return b.String()
		case in:
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
