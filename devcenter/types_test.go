package devcenter

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestIDDecoding(t *testing.T) {
	for in, want := range map[string]ID{`15`: 15, `"15"`: 15, `" 7 "`: 7, `null`: 0} {
		var id ID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Errorf("%s → %d, %v", in, id, err)
		}
	}
	var id ID
	if err := json.Unmarshal([]byte(`"templateId"`), &id); err == nil {
		t.Error("a non-numeric id decoded")
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]Status{
		"Completed": StatusCompleted, "Success": StatusCompleted, "In Progress": StatusInProgress,
		"Pending": StatusPending, "Failed": StatusFailed, "FAILED": StatusFailed, "whatever": StatusUnknown,
	} {
		if got := ParseStatus(in); got != want {
			t.Errorf("ParseStatus(%q) = %v", in, got)
		}
	}
}

func TestSecretRedacts(t *testing.T) {
	s := Secret("hunter2")
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "secret", s)
	j, _ := json.Marshal(struct{ S Secret }{s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), b.String(), string(j)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret leaked: %s", out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Error("Reveal")
	}
}

func TestCanonicalTemplate(t *testing.T) {
	a := TemplateDef{View: " IHVDriver", Projection: []string{"A"}, Condition: json.RawMessage(`{}`),
		Aggregation: json.RawMessage(`{"b":1, "a":2}`)}
	b := TemplateDef{View: "IHVDriver", Projection: []string{"A"}, Aggregation: json.RawMessage(`{"a":2,"b":1}`)}
	if a.Canonical() != b.Canonical() {
		t.Errorf("%s != %s", a.Canonical(), b.Canonical())
	}
	b.Projection = []string{"B"}
	if a.Canonical() == b.Canonical() {
		t.Error("different projections compare equal")
	}
}

func TestPeriodDays(t *testing.T) {
	for in, want := range map[string]int{"Yesterday": 1, "Last7Days": 7, "last90days": 90, "Last0Days": 0, "Lastweek": 0} {
		if got := PeriodDays(in); got != want {
			t.Errorf("PeriodDays(%q) = %d", in, got)
		}
	}
}

func TestSniffDelimiter(t *testing.T) {
	for in, want := range map[string]rune{"a\tb\tc": '\t', "a,b,c": ',', "a;b": ';', "single": '\t', "a,b\tc,d": ','} {
		if got := sniffDelimiter([]byte(in)); got != want {
			t.Errorf("sniff(%q) = %q", in, got)
		}
	}
}

// TestCanonicalEquivalents: the documented equivalents compare equal;
// real differences (a value, the orderby priority, a limit) do not.
func TestCanonicalEquivalents(t *testing.T) {
	zero, ten := 0, 10
	base := TemplateDef{View: "IHVDriver", Projection: []string{"A", "B"}, DateRange: DateRange{ReportPeriod: "Last7Days"},
		Condition:   json.RawMessage(`{"and":[{"attribute":"Market","operator":"eq","value":"US"},{"attribute":"X","operator":"gt","value":"1"}],"or":[]}`),
		Aggregation: json.RawMessage(`{"aggregatedColumns":["SUM(EventCount)","DCOUNT(DeviceId)"]}`),
		OrderBy:     json.RawMessage(`[{"attribute":"SUM(EventCount)","sort":"desc"},{"attribute":"A","sort":"asc"}]`)}
	same := base
	same.View, same.DateRange.ReportPeriod, same.Projection, same.Limit = " ihvdriver ", "last7days", []string{"B", " A"}, &zero
	same.Condition = json.RawMessage(`{
		"And": [ {"Attribute":"X","Operator":"GT","Value":"1"}, {"attribute":" Market","operator":"EQ","value":"US"} ] }`)
	same.Aggregation = json.RawMessage(`{"AggregatedColumns":["dcount(DeviceId)","sum( EventCount )"]}`)
	same.OrderBy = json.RawMessage(`[{"Attribute":"sum(EventCount)","Sort":"DESC"},{"attribute":"A","sort":"asc"}]`)
	if base.Canonical() != same.Canonical() {
		t.Errorf("equivalents differ:\n%s\n%s", base.Canonical(), same.Canonical())
	}
	for name, change := range map[string]func(*TemplateDef){
		"value": func(d *TemplateDef) {
			d.Condition = json.RawMessage(`{"and":[{"attribute":"Market","operator":"eq","value":"us"}]}`)
		},
		"orderby": func(d *TemplateDef) {
			d.OrderBy = json.RawMessage(`[{"attribute":"A","sort":"asc"},{"attribute":"SUM(EventCount)","sort":"desc"}]`)
		},
		"limit":  func(d *TemplateDef) { d.Limit = &ten },
		"column": func(d *TemplateDef) { d.Projection = []string{"A", "C"} },
		"period": func(d *TemplateDef) { d.DateRange.ReportPeriod = "Last3Days" },
	} {
		d := base
		change(&d)
		if d.Canonical() == base.Canonical() {
			t.Errorf("a different %s compares equal", name)
		}
	}
}
