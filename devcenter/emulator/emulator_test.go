package emulator

import (
	"strings"
	"testing"
)

func TestNewRejectsUnsupportedOptions(t *testing.T) {
	for _, opts := range []Options{{Delimiter: ';'}, {DateFormat: "rfc3339"}, {Faults: Faults{Expire: 2}}} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "option") {
					t.Errorf("New(%+v): panic %v, want one naming the option", opts, r)
				}
			}()
			New(opts)
		}()
	}
}

func TestColumnLists(t *testing.T) {
	if len(IHVColumns) != 30 || len(OEMColumns) != 28 {
		t.Fatalf("%d IHV and %d OEM columns, want 30 and 28", len(IHVColumns), len(OEMColumns))
	}
	if IHVColumns[0] != "ReportId" || IHVColumns[29] != "EventCount" || OEMColumns[13] != "Model" || OEMColumns[15] != "ModelFamily" {
		t.Errorf("canonical order: %v / %v", IHVColumns, OEMColumns)
	}
	IHVColumns[0] = "changed" // callers' changes do not reach the emulator
	defer func() { IHVColumns[0] = "ReportId" }()
	if _, err := compileTemplate(templateDef{View: "IHVDriver", Projection: []string{"ReportId"}, DateRange: dateRange{"Yesterday"}}); err != nil {
		t.Errorf("ReportId rejected after changing IHVColumns: %v", err)
	}
}
