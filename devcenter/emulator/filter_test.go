package emulator

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// filterRow is the IHV row the filter tests evaluate conditions against.
func filterRow() *record {
	var r record
	r[colReportID] = "12"
	r[colEventCount] = "9"
	r[colFailureDate] = "2024-03-14"
	r[colFailureDateTime] = "2024-03-14 08:30:00"
	r[colCabExpirationTime] = ""
	r[colCabCollectionTime] = "2024-03-14 09:00:00"
	r[colDriverName] = "contosonet.sys"
	r[colMarket] = "US"
	r[colEventType] = "Kernel"
	r[colFailureName] = "AV_contosonet!DispatchIoctl"
	r[colOSVersion] = "10.0.19045.3803"
	r[colSymbol] = "50%_off!x"
	return &r
}

// leaf is a condition leaf as JSON.
func leaf(attr, op, value string) map[string]any {
	return map[string]any{"attribute": attr, "operator": op, "value": value}
}

func TestConditionEvaluation(t *testing.T) {
	and := func(nodes ...any) map[string]any { return map[string]any{"and": nodes} }
	or := func(nodes ...any) map[string]any { return map[string]any{"or": nodes} }
	nested := func(tree map[string]any) map[string]any { return map[string]any{"condition": tree} }
	yes, no := leaf("Market", "eq", "US"), leaf("Market", "eq", "DE")

	tests := []struct {
		name string
		tree any
		want bool
	}{
		// Text: case-insensitive for every operator.
		{"EQ text ignores case", leaf("EventType", "EQ", "kernel"), true},
		{"EQ text differs", leaf("EventType", "eq", "Kernel2"), false},
		{"NEQ text", leaf("EventType", "neq", "System crash"), true},
		{"NEQ text same ignoring case", leaf("EventType", "Neq", "KERNEL"), false},
		{"LT text", leaf("DriverName", "lt", "d"), true},
		{"GT text", leaf("DriverName", "gt", "D"), false},
		{"LTE text equal", leaf("DriverName", "lte", "CONTOSONET.SYS"), true},
		{"GTE text", leaf("DriverName", "gte", "contosonet.sys"), true},
		{"text column compares as text even if numeric-looking", leaf("OSVersion", "gt", "10.0.2"), false},

		// Numbers: numeric columns compare numerically when both parse.
		{"LT number (as text 9 > 10)", leaf("EventCount", "lt", "10"), true},
		{"GT number", leaf("EventCount", "gt", "10"), false},
		{"EQ number 9.0", leaf("EventCount", "eq", "9.0"), true},
		{"LTE number", leaf("EventCount", "lte", "9"), true},
		{"GTE number", leaf("EventCount", "gte", "9.5"), false},
		{"NEQ number", leaf("ReportId", "neq", "12"), false},
		{"number vs non-number compares as text", leaf("EventCount", "eq", "nine"), false},
		{"number vs non-number GT as text", leaf("EventCount", "gt", "abc"), false},
		{"JSON number value", map[string]any{"attribute": "EventCount", "operator": "gt", "value": 8}, true},

		// Times: date and time columns compare chronologically.
		{"GT datetime vs date", leaf("FailureDateTime", "gt", "2024-03-14"), true},
		{"LT datetime vs RFC 3339", leaf("FailureDateTime", "lt", "2024-03-14T09:00:00Z"), true},
		{"EQ date in m/d/yyyy", leaf("FailureDate", "eq", "3/14/2024"), true},
		{"GTE date", leaf("FailureDate", "gte", "2024-03-15"), false},
		{"LTE time", leaf("CabCollectionTime", "lte", "2024-03-14 09:00:00"), true},
		{"empty time EQ empty", leaf("CabExpirationTime", "eq", ""), true},
		{"empty time GT a time (as text)", leaf("CabExpirationTime", "gt", "2024-01-01"), false},

		// IN: comma-separated, trimmed, case-insensitive; or a JSON array.
		{"IN", leaf("Market", "in", "DE, us ,FR"), true},
		{"IN misses", leaf("Market", "IN", "DE,FR"), false},
		{"IN numbers", leaf("EventCount", "in", "8,9.0"), true},
		{"IN array", map[string]any{"attribute": "Market", "operator": "in", "value": []string{"JP", "US"}}, true},
		{"IN single", leaf("Market", "in", "US"), true},

		// LIKE: % and _ wildcards, whole value, case-insensitive, \ escapes.
		{"LIKE prefix with _", leaf("FailureName", "like", "av_%"), true},
		{"LIKE contains", leaf("FailureName", "LIKE", "%dispatch%"), true},
		{"LIKE is anchored", leaf("FailureName", "like", "AV"), false},
		{"LIKE _ at start", leaf("FailureName", "like", "_V%"), true},
		{"LIKE suffix", leaf("FailureName", "like", "%Ioctl"), true},
		{"LIKE _ needs a character", leaf("FailureName", "like", "%ioctl_"), false},
		{"LIKE escaped wildcards", leaf("Symbol", "like", `50\%\_off!%`), true},
		{"LIKE escaped % is literal", leaf("Symbol", "like", `50\%x%`), false},
		{"LIKE regexp characters are literal", leaf("Symbol", "like", "50%.x"), false},

		// Trees.
		{"empty object", map[string]any{}, true},
		{"empty arrays", map[string]any{"and": []any{}, "or": []any{}}, true},
		{"and all true", and(yes, leaf("EventCount", "gt", "1")), true},
		{"and one false", and(yes, no), false},
		{"or one true", or(no, yes), true},
		{"or all false", or(no, no), false},
		{"and and or: both hold", map[string]any{"and": []any{yes}, "or": []any{no, yes}}, true},
		{"and and or: or fails", map[string]any{"and": []any{yes}, "or": []any{no}}, false},
		{"and and or: and fails", map[string]any{"and": []any{no}, "or": []any{yes}}, false},
		{"nested or in and", and(yes, nested(or(no, leaf("EventCount", "eq", "9")))), true},
		{"nested and in or", or(no, nested(and(yes, no))), false},
		{"deep nesting", and(nested(or(nested(and(nested(or(yes))))))), true},
		{"empty nested group", and(nested(map[string]any{})), true},
		{"bare group in array", and(or(no, yes)), true},
		{"top-level leaf", yes, true},
		{"keys ignore case", map[string]any{"AND": []any{map[string]any{"Attribute": "Market", "OPERATOR": "Eq", "Value": "us"}}}, true},
	}
	row := filterRow()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.tree)
			if err != nil {
				t.Fatal(err)
			}
			c, err := compileCondition(raw, "condition", rowResolver(viewIHV))
			if err != nil {
				t.Fatalf("compile %s: %v", raw, err)
			}
			if got := c.match(row[:]); got != tt.want {
				t.Errorf("%s: match = %v, want %v", raw, got, tt.want)
			}
		})
	}
}

func TestTemplateQueryValidation(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"view": "IHVDriver", "projection": []string{"DriverName", "FailureHash"},
			"dateRange": map[string]any{"reportPeriod": "Last7Days"},
		}
	}
	withAgg := func(d map[string]any) {
		d["aggregation"] = map[string]any{"aggregatedColumns": []string{"SUM(EventCount)"}}
	}
	tests := []struct {
		name   string
		change func(map[string]any)
		want   string
	}{
		{"unknown attribute", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{leaf("Foo", "eq", "1")}}
		}, `condition.and[0].attribute: column "Foo" is not available in view IHVDriver`},
		{"attribute of the other view", func(d map[string]any) {
			d["condition"] = map[string]any{"or": []any{leaf("Market", "eq", "US"), leaf("Model", "eq", "1")}}
		}, `condition.or[1].attribute: column "Model"`},
		{"nested path", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{leaf("Market", "eq", "US"),
				map[string]any{"condition": map[string]any{"or": []any{leaf("market", "eq", "US")}}}}}
		}, `condition.and[1].condition.or[0].attribute: column "market"`},
		{"aggregate in condition", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{leaf("SUM(EventCount)", "gt", "1")}}
		}, `condition.and[0].attribute: "SUM(EventCount)" is an aggregate`},
		{"unknown operator", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{leaf("Market", "approx", "US")}}
		}, `condition.and[0].operator "approx" is not supported`},
		{"missing operator", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{map[string]any{"attribute": "Market", "value": "US"}}}
		}, `condition.and[0].operator is required`},
		{"missing attribute", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{map[string]any{"operator": "eq", "value": "US"}}}
		}, `condition.and[0].attribute is required`},
		{"missing value", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{map[string]any{"attribute": "Market", "operator": "eq"}}}
		}, `condition.and[0].value is required`},
		{"object value", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{map[string]any{"attribute": "Market", "operator": "eq", "value": map[string]any{}}}}
		}, `condition.and[0].value must be a string`},
		{"bad IN value", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{map[string]any{"attribute": "Market", "operator": "in", "value": true}}}
		}, `condition.and[0].value must be a comma-separated list`},
		{"unknown key", func(d map[string]any) { d["condition"] = map[string]any{"xor": []any{}} }, `condition has an unknown key "xor"`},
		{"mixed leaf and group", func(d map[string]any) {
			d["condition"] = map[string]any{"and": []any{}, "attribute": "Market", "operator": "eq", "value": "US"}
		}, `condition mixes the keys`},
		{"and not an array", func(d map[string]any) { d["condition"] = map[string]any{"and": leaf("Market", "eq", "US")} }, `condition.and must be an array`},
		{"node not an object", func(d map[string]any) { d["condition"] = map[string]any{"or": []any{"Market eq US"}} }, `condition.or[0] must be an object`},
		{"wrapper at the top", func(d map[string]any) {
			d["condition"] = map[string]any{"condition": map[string]any{}}
		}, `condition.condition: a nested condition belongs inside an and/or array`},
		{"SUM of text", func(d map[string]any) {
			d["aggregation"] = map[string]any{"aggregatedColumns": []string{"SUM(DeviceId)"}}
		}, `aggregation.aggregatedColumns[0]: SUM needs a numeric column`},
		{"aggregate listed twice", func(d map[string]any) {
			d["aggregation"] = map[string]any{"aggregatedColumns": []string{"SUM(EventCount)", "sum( EventCount )"}}
		}, `aggregation.aggregatedColumns[1]: "sum( EventCount )" is listed twice`},
		{"bad aggregate in projection", func(d map[string]any) {
			d["projection"] = []string{"DriverName", "MEDIAN(EventCount)"}
		}, `projection[1]: "MEDIAN(EventCount)" is not FUNC(Column)`},
		{"aggregate projected twice", func(d map[string]any) {
			d["projection"] = []string{"DCOUNT(DeviceId)", "dcount(DeviceId)"}
		}, `projection[1]: column "dcount(DeviceId)" is listed twice`},
		{"having without aggregates", func(d map[string]any) {
			d["aggregation"] = map[string]any{"condition": map[string]any{"and": []any{leaf("DriverName", "eq", "x")}}}
		}, `aggregation.condition needs aggregate columns`},
		{"having on an unprojected column", func(d map[string]any) {
			withAgg(d)
			d["aggregation"].(map[string]any)["condition"] = map[string]any{"and": []any{leaf("Market", "eq", "US")}}
		}, `aggregation.condition.and[0].attribute: column "Market" is neither projected nor aggregated`},
		{"having on a bad aggregate", func(d map[string]any) {
			withAgg(d)
			d["aggregation"].(map[string]any)["condition"] = map[string]any{"and": []any{leaf("AVG(Market)", "gt", "1")}}
		}, `aggregation.condition.and[0].attribute: AVG needs a numeric column`},
		{"orderby unknown column", func(d map[string]any) {
			d["orderby"] = []any{map[string]any{"attribute": "Nope", "sort": "asc"}}
		}, `orderby[0].attribute: column "Nope" is not available`},
		{"orderby bad sort", func(d map[string]any) {
			d["orderby"] = []any{map[string]any{"attribute": "DriverName", "sort": "up"}}
		}, `orderby[0].sort "up" is not supported`},
		{"orderby no attribute", func(d map[string]any) { d["orderby"] = []any{map[string]any{"sort": "asc"}} }, `orderby[0].attribute is required`},
		{"orderby aggregate without aggregation", func(d map[string]any) {
			d["orderby"] = []any{map[string]any{"attribute": "SUM(EventCount)", "sort": "desc"}}
		}, `orderby[0].attribute: "SUM(EventCount)" is an aggregate, but the template aggregates nothing`},
		{"orderby unprojected column with aggregation", func(d map[string]any) {
			withAgg(d)
			d["orderby"] = []any{map[string]any{"attribute": "DriverName"}, map[string]any{"attribute": "Market"}}
		}, `orderby[1].attribute: column "Market" is neither projected nor aggregated`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := base()
			tt.change(def)
			raw, err := json.Marshal(def)
			if err != nil {
				t.Fatal(err)
			}
			var td templateDef
			if err := json.Unmarshal(raw, &td); err != nil {
				t.Fatal(err)
			}
			_, err = compileTemplate(td)
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || !strings.Contains(ae.message, tt.want) {
				t.Errorf("compile %s: error %v, want a 400 containing %q", raw, err, tt.want)
			}
		})
	}
}

func TestTemplateQueryValidationOverHTTP(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	bad := map[string]any{
		"view": "OEMDriver", "projection": []string{"FailureName"}, "dateRange": map[string]any{"reportPeriod": "Yesterday"},
		"condition": map[string]any{"and": []any{leaf("OSName", "eq", "Windows 10")}},
	}
	const want = `condition.and[0].attribute: column "OSName" is not available in view OEMDriver`
	h.apiError(http.StatusBadRequest, "BadRequest", want, http.MethodPost, "/analytics/driver/reporttemplate", bad)
	h.apiError(http.StatusBadRequest, "BadRequest", want, http.MethodPost, "/analytics/driver/reporttemplate/1", bad)
	// The failed edit left the demo template alone.
	var one templateItem
	if err := json.Unmarshal(h.api(http.StatusOK, http.MethodGet, "/analytics/driver/reporttemplate/1", nil).Data, &one); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(one.Template, `"IHVDriver"`) {
		t.Errorf("template 1 after a failed edit: %s", one.Template)
	}
}
