package emulator

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

// listTimePattern matches createdDatetime/modifiedDatetime: no zone.
var listTimePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?$`)

func TestTemplateLifecycle(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	def := map[string]any{
		"view":        " IHVDriver", // the docs' skeleton has the leading space
		"projection":  []string{"DriverName", "FailureHash"},
		"dateRange":   map[string]string{"reportPeriod": "Last30Days"},
		"condition":   map[string]any{"and": []any{map[string]string{"attribute": "Market", "operator": "eq", "value": "US"}}, "or": []any{}},
		"aggregation": map[string]any{"aggregatedColumns": []string{"sum(EventCount)", "DCOUNT(DeviceId)"}},
		"orderby":     []map[string]string{{"attribute": "DCOUNT(DeviceId)", "sort": "desc"}},
		"limit":       10,
		"unknownKey":  true, // lenient on unknown fields
	}
	resp, raw := h.call(http.MethodPost, "/analytics/driver/reporttemplate", def)
	if resp.StatusCode != http.StatusCreated || string(raw) != `{"data":{"templateId":3},"errors":null}` {
		t.Fatalf("create: status %d body %s", resp.StatusCode, raw)
	}

	// List: the demo templates and the new one, definitions as JSON strings.
	var items []templateItem
	env := h.api(http.StatusOK, http.MethodGet, "/v1.0/my/analytics/driver/reporttemplate", nil)
	if env.Errors == nil || len(env.Errors) != 0 {
		t.Fatalf("list: errors %v, want []", env.Errors)
	}
	if err := json.Unmarshal(env.Data, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].TemplateID != DemoIHVTemplateID || items[1].TemplateID != DemoOEMTemplateID || items[2].TemplateID != 3 {
		t.Fatalf("list: %+v", items)
	}
	for _, it := range items {
		if !listTimePattern.MatchString(it.CreatedDatetime) || !listTimePattern.MatchString(it.ModifiedDatetime) {
			t.Errorf("template %d timestamps %q %q", it.TemplateID, it.CreatedDatetime, it.ModifiedDatetime)
		}
	}
	var demo templateDef
	if err := json.Unmarshal([]byte(items[0].Template), &demo); err != nil {
		t.Fatalf("demo template string %q: %v", items[0].Template, err)
	}
	if demo.View != "IHVDriver" || !slices.Equal(demo.Projection, IHVColumns) || demo.DateRange.ReportPeriod != "Last7Days" {
		t.Errorf("demo IHV template: %+v", demo)
	}

	// Get one: the stored definition, view trimmed, optional parts verbatim.
	var one templateItem
	env = h.api(http.StatusOK, http.MethodGet, "/analytics/driver/reporttemplate/3", nil)
	if err := json.Unmarshal(env.Data, &one); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(one.Template), &got); err != nil {
		t.Fatalf("template string %q: %v", one.Template, err)
	}
	if got["view"] != "IHVDriver" || got["limit"] != 10.0 || got["unknownKey"] != nil {
		t.Errorf("stored definition: %v", got)
	}
	wantAgg := map[string]any{"aggregatedColumns": []any{"sum(EventCount)", "DCOUNT(DeviceId)"}}
	if !reflect.DeepEqual(got["aggregation"], wantAgg) || got["orderby"] == nil || got["condition"] == nil {
		t.Errorf("optional parts not kept verbatim: %v", got)
	}

	// Edit: a full replace; the id comes back as a string.
	resp, raw = h.call(http.MethodPost, "/analytics/driver/reporttemplate/3", map[string]any{
		"view": "OEMDriver", "projection": []string{"Model", "EventType"},
		"dateRange": map[string]string{"reportPeriod": "Yesterday"}, "condition": map[string]any{},
	})
	if resp.StatusCode != http.StatusCreated || string(raw) != `{"data":{"templateId":"3"},"errors":[]}` {
		t.Fatalf("edit: status %d body %s", resp.StatusCode, raw)
	}
	env = h.api(http.StatusOK, http.MethodGet, "/analytics/driver/reporttemplate/3", nil)
	if err := json.Unmarshal(env.Data, &one); err != nil {
		t.Fatal(err)
	}
	if one.Template != `{"view":"OEMDriver","projection":["Model","EventType"],"dateRange":{"reportPeriod":"Yesterday"},"condition":{}}` {
		t.Errorf("edited template: %s", one.Template)
	}

	h.apiError(http.StatusNotFound, "NotFound", "template 99", http.MethodGet, "/analytics/driver/reporttemplate/99", nil)
	h.apiError(http.StatusNotFound, "NotFound", "template 99", http.MethodPost, "/analytics/driver/reporttemplate/99", def)
	h.apiError(http.StatusBadRequest, "BadRequest", "templateId", http.MethodGet, "/analytics/driver/reporttemplate/abc", nil)
	h.apiError(http.StatusMethodNotAllowed, "MethodNotAllowed", "DELETE", http.MethodDelete, "/analytics/driver/reporttemplate/3", nil)
}

func TestTemplateValidationNamesTheField(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	valid := func() map[string]any {
		return map[string]any{
			"view": "IHVDriver", "projection": []string{"DriverName"},
			"dateRange": map[string]any{"reportPeriod": "Last7Days"},
		}
	}
	tests := []struct {
		name   string
		change func(map[string]any)
		want   string
	}{
		{"no view", func(d map[string]any) { delete(d, "view") }, "view is required"},
		{"bad view", func(d map[string]any) { d["view"] = "Driver" }, `view "Driver"`},
		{"no projection", func(d map[string]any) { d["projection"] = []string{} }, "projection is required"},
		{"column of other view", func(d map[string]any) { d["projection"] = []string{"DriverName", "Model"} }, `projection[1]: column "Model"`},
		{"column case", func(d map[string]any) { d["projection"] = []string{"drivername"} }, `projection[0]`},
		{"duplicate column", func(d map[string]any) { d["projection"] = []string{"Market", "Market"} }, `projection[1]: column "Market" is listed twice`},
		{"projection type", func(d map[string]any) { d["projection"] = "DriverName" }, "projection must be an array"},
		{"no period", func(d map[string]any) { delete(d, "dateRange") }, "dateRange.reportPeriod is required"},
		{"bad period", func(d map[string]any) { d["dateRange"] = map[string]any{"reportPeriod": "Last5Days"} }, `dateRange.reportPeriod "Last5Days"`},
		{"bad function", func(d map[string]any) {
			d["aggregation"] = map[string]any{"aggregatedColumns": []string{"MEDIAN(EventCount)"}}
		}, "aggregation.aggregatedColumns[0]"},
		{"bad aggregated column", func(d map[string]any) {
			d["aggregation"] = map[string]any{"aggregatedColumns": []string{"SUM(EventCount)", "SUM(Baseboard)"}}
		}, `aggregation.aggregatedColumns[1]: column "Baseboard"`},
		{"negative limit", func(d map[string]any) { d["limit"] = -1 }, "limit must be >= 0"},
		{"limit type", func(d map[string]any) { d["limit"] = "10" }, "limit must be an integer"},
		{"condition type", func(d map[string]any) { d["condition"] = []any{} }, "condition must be an object"},
		{"orderby type", func(d map[string]any) { d["orderby"] = map[string]any{} }, "orderby must be an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			def := valid()
			tt.change(def)
			h.apiError(http.StatusBadRequest, "BadRequest", tt.want, http.MethodPost, "/analytics/driver/reporttemplate", def)
		})
	}
	h.t = t
	h.apiError(http.StatusBadRequest, "BadRequest", "not valid JSON", http.MethodPost, "/analytics/driver/reporttemplate", "{")
	h.apiError(http.StatusBadRequest, "BadRequest", "empty", http.MethodPost, "/analytics/driver/reporttemplate", "")
	// Nothing invalid was stored.
	var items []templateItem
	if err := json.Unmarshal(h.api(http.StatusOK, http.MethodGet, "/analytics/driver/reporttemplate", nil).Data, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Errorf("%d templates after invalid creates, want the 2 demo ones", len(items))
	}
}
