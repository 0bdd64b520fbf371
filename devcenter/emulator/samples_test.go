package emulator

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleRunAt is when the sample tests' schedules run: the time of the demo
// schedules' newest run at testNow, so the files see the same rows.
var sampleRunAt = time.Date(2024, 3, 15, 2, 0, 0, 0, time.UTC)

// runTemplate creates a template from def (a JSON string or a value to
// encode), schedules it to run once at sampleRunAt and returns its file,
// parsed, with the report id.
func (h *harness) runTemplate(def any) (records [][]string, reportID int) {
	h.t.Helper()
	var created struct {
		TemplateID int `json:"templateId"`
	}
	if err := json.Unmarshal(h.api(http.StatusCreated, http.MethodPost, "/analytics/driver/reporttemplate", def).Data, &created); err != nil {
		h.t.Fatal(err)
	}
	var scheduled struct {
		ReportID int `json:"reportId"`
	}
	env := h.api(http.StatusCreated, http.MethodPost, "/analytics/driver/report", map[string]any{
		"templateId": created.TemplateID,
		"schedule":   map[string]any{"startTime": sampleRunAt.Format(time.RFC3339), "recurrenceInterval": 24, "recurrence": 1},
	})
	if err := json.Unmarshal(env.Data, &scheduled); err != nil {
		h.t.Fatal(err)
	}
	runs := h.runs(scheduled.ReportID, "")
	if len(runs) != 1 || runs[0].ReportLocation == "" {
		h.t.Fatalf("report %d: runs %+v, want one finished run", scheduled.ReportID, runs)
	}
	_, _, records = h.download(runs[0].ReportLocation, '\t')
	return records, scheduled.ReportID
}

// referenceRows runs an unaggregated template of all the view's columns
// for period at sampleRunAt and returns its rows as column → value maps:
// the input the samples' aggregations are recomputed from.
func (h *harness) referenceRows(view, period string) []map[string]string {
	h.t.Helper()
	columns := IHVColumns
	if view == "OEMDriver" {
		columns = OEMColumns
	}
	records, _ := h.runTemplate(map[string]any{
		"view": view, "projection": columns, "dateRange": map[string]string{"reportPeriod": period},
	})
	if !slices.Equal(records[0], columns) {
		h.t.Fatalf("reference header %v", records[0])
	}
	rows := make([]map[string]string, len(records)-1)
	for i, rec := range records[1:] {
		rows[i] = make(map[string]string, len(rec))
		for j, name := range records[0] {
			rows[i][name] = rec[j]
		}
	}
	return rows
}

// readSample reads a sample template of the docs from testdata.
func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkFile compares a file with the expected header and rows.
func checkFile(t *testing.T, got [][]string, header []string, rows [][]string) {
	t.Helper()
	if !slices.Equal(got[0], header) {
		t.Fatalf("header %v, want %v", got[0], header)
	}
	if len(got)-1 != len(rows) {
		t.Fatalf("%d rows, want %d", len(got)-1, len(rows))
	}
	for i, row := range rows {
		if !slices.Equal(got[i+1], row) {
			t.Fatalf("row %d: %v, want %v", i, got[i+1], row)
		}
	}
}

// testGroup is a group of the tests' own aggregation.
type testGroup struct {
	key     []string
	sum     int
	devices map[string]bool
}

// groupRows groups rows by the columns keys, in order of first appearance,
// summing EventCount and collecting the distinct non-empty DeviceIds.
func groupRows(rows []map[string]string, keys ...string) []*testGroup {
	var groups []*testGroup
	index := make(map[string]*testGroup)
	for _, row := range rows {
		var key []string
		for _, k := range keys {
			key = append(key, row[k])
		}
		id := strings.Join(key, "\x00")
		g := index[id]
		if g == nil {
			g = &testGroup{key: key, devices: make(map[string]bool)}
			index[id] = g
			groups = append(groups, g)
		}
		n, err := strconv.Atoi(row["EventCount"])
		if err != nil {
			panic(err)
		}
		g.sum += n
		if row["DeviceId"] != "" {
			g.devices[row["DeviceId"]] = true
		}
	}
	return groups
}

func TestSampleTemplatesAllColumns(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	for _, tt := range []struct {
		file    string
		demo    int
		columns []string
	}{
		{"sample1-ihv-all-columns.json", DemoIHVReportID, IHVColumns},
		{"sample2-oem-all-columns.json", DemoOEMReportID, OEMColumns},
	} {
		// The demo schedules' newest run is at sampleRunAt over the same
		// period: the same rows, except for ReportId.
		got, id := h.runTemplate(readSample(t, tt.file))
		_, _, demo := h.download(h.newestLink(tt.demo), '\t')
		for _, row := range demo[1:] {
			row[0] = strconv.Itoa(id)
		}
		checkFile(t, got, tt.columns, demo[1:])
	}
}

func TestSample3SumAndDistinctCountByDriverOrdered(t *testing.T) {
	h := newHarness(t, Options{RowsPerDay: 60}, testNow)
	got, _ := h.runTemplate(readSample(t, "sample3-ihv-failures-by-driver.json"))
	groups := groupRows(h.referenceRows("IHVDriver", "Last30Days"), "DriverName", "DriverVersion", "FailureName", "FailureHash")
	sort.SliceStable(groups, func(i, j int) bool { return len(groups[i].devices) > len(groups[j].devices) })
	var want [][]string
	for _, g := range groups {
		want = append(want, append(slices.Clone(g.key), strconv.Itoa(g.sum), strconv.Itoa(len(g.devices))))
	}
	checkFile(t, got, []string{"DriverName", "DriverVersion", "FailureName", "FailureHash", "SUM(EventCount)", "DCOUNT(DeviceId)"}, want)
	if len(want) < 20 {
		t.Errorf("only %d groups", len(want))
	}
}

func TestSample4ConditionAndHaving(t *testing.T) {
	h := newHarness(t, Options{RowsPerDay: 600}, testNow)
	got, _ := h.runTemplate(readSample(t, "sample4-oem-kernel-crashes.json"))
	var kernel []map[string]string
	for _, row := range h.referenceRows("OEMDriver", "Last7Days") {
		if row["EventType"] == "Kernel" {
			kernel = append(kernel, row)
		}
	}
	var want [][]string
	groups := groupRows(kernel, "FailureName", "FailureHash")
	for _, g := range groups {
		if g.sum > 1000 {
			want = append(want, append(slices.Clone(g.key), strconv.Itoa(g.sum)))
		}
	}
	checkFile(t, got, []string{"FailureName", "FailureHash", "SUM(EventCount)"}, want)
	if len(want) == 0 || len(want) == len(groups) {
		t.Errorf("%d of %d groups pass the HAVING condition: the test data does not exercise it", len(want), len(groups))
	}
}

func TestSample5TopDriversWithLimit(t *testing.T) {
	h := newHarness(t, Options{RowsPerDay: 30}, testNow)
	sample := readSample(t, "sample5-ihv-top-drivers.json")
	got, _ := h.runTemplate(sample)
	groups := groupRows(h.referenceRows("IHVDriver", "Last90Days"), "DriverName")
	sort.SliceStable(groups, func(i, j int) bool { return len(groups[i].devices) > len(groups[j].devices) })
	var want [][]string
	for _, g := range groups {
		want = append(want, []string{g.key[0], strconv.Itoa(len(g.devices))})
	}
	header := []string{"DriverName", "DCOUNT(DeviceId)"}
	checkFile(t, got, header, want[:min(10, len(want))])

	// The same with a limit below the number of drivers: the first rows
	// after ordering.
	var def map[string]any
	if err := json.Unmarshal([]byte(sample), &def); err != nil {
		t.Fatal(err)
	}
	def["limit"] = 3
	got, _ = h.runTemplate(def)
	checkFile(t, got, header, want[:3])
}

func TestAggregatesInProjectionAndAllFunctions(t *testing.T) {
	h := newHarness(t, Options{RowsPerDay: 40}, testNow)
	got, _ := h.runTemplate(map[string]any{
		"view":       "IHVDriver",
		"projection": []string{"Market", "sum(EventCount)", "DeviceType"},
		"dateRange":  map[string]string{"reportPeriod": "Last10Days"},
		"condition": map[string]any{"or": []any{
			map[string]string{"attribute": "Market", "operator": "IN", "value": "US, de,JP"},
			map[string]any{"condition": map[string]any{"and": []any{
				map[string]string{"attribute": "Market", "operator": "eq", "value": "FR"},
				map[string]string{"attribute": "EventCount", "operator": "gte", "value": "10"},
			}}},
		}},
		"aggregation": map[string]any{
			"aggregatedColumns": []string{"SUM(EventCount)", "AVG(EventCount)", "MIN(FailureDateTime)",
				"max(CabExpirationTime)", "Count(EventCount)", "DCOUNT(CabIdHash)"},
			"condition": map[string]any{"and": []any{
				map[string]string{"attribute": "COUNT(EventCount)", "operator": "gt", "value": "2"},
			}},
		},
		"orderby": []map[string]string{{"attribute": "Market", "sort": "asc"}, {"attribute": "MAX(EventCount)", "sort": "DESC"}},
	})

	type agg struct {
		key          []string
		sum, n, max  int
		minTime      string
		maxExpiry    string
		cabs         map[string]bool
		firstSeenPos int
	}
	var groups []*agg
	index := make(map[string]*agg)
	for _, row := range h.referenceRows("IHVDriver", "Last10Days") {
		count, _ := strconv.Atoi(row["EventCount"])
		m := row["Market"]
		if m != "US" && m != "DE" && m != "JP" && !(m == "FR" && count >= 10) {
			continue
		}
		id := m + "\x00" + row["DeviceType"]
		g := index[id]
		if g == nil {
			g = &agg{key: []string{m, row["DeviceType"]}, minTime: row["FailureDateTime"], cabs: map[string]bool{}, firstSeenPos: len(groups)}
			index[id] = g
			groups = append(groups, g)
		}
		g.sum += count
		g.n++
		g.max = max(g.max, count)
		g.minTime = min(g.minTime, row["FailureDateTime"]) // yyyy-MM-dd HH:mm:ss sorts as text
		if e := row["CabExpirationTime"]; e > g.maxExpiry {
			g.maxExpiry = e
		}
		if c := row["CabIdHash"]; c != "" {
			g.cabs[c] = true
		}
	}
	groups = slices.DeleteFunc(groups, func(g *agg) bool { return g.n <= 2 })
	sort.SliceStable(groups, func(i, j int) bool {
		if groups[i].key[0] != groups[j].key[0] {
			return groups[i].key[0] < groups[j].key[0]
		}
		return groups[i].max > groups[j].max
	})
	var want [][]string
	for _, g := range groups {
		avg := strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(float64(g.sum)/float64(g.n), 'f', 6, 64), "0"), ".")
		want = append(want, []string{g.key[0], strconv.Itoa(g.sum), g.key[1], avg, g.minTime, g.maxExpiry,
			strconv.Itoa(g.n), strconv.Itoa(len(g.cabs))})
	}
	checkFile(t, got, []string{"Market", "sum(EventCount)", "DeviceType", "AVG(EventCount)", "MIN(FailureDateTime)",
		"max(CabExpirationTime)", "Count(EventCount)", "DCOUNT(CabIdHash)"}, want)
	if len(want) < 5 {
		t.Errorf("only %d groups", len(want))
	}
}

func TestOrderByHiddenColumnAndLimitWithoutAggregation(t *testing.T) {
	h := newHarness(t, Options{RowsPerDay: 50}, testNow)
	got, _ := h.runTemplate(map[string]any{
		"view": "OEMDriver", "projection": []string{"DriverName", "EventCount"},
		"dateRange": map[string]string{"reportPeriod": "Last3Days"},
		"condition": map[string]any{"and": []any{
			map[string]string{"attribute": "FailureName", "operator": "like", "value": "%\\_%!%"},
			map[string]string{"attribute": "CabIdHash", "operator": "neq", "value": ""},
		}},
		"orderby": []map[string]string{{"attribute": "EventCount", "sort": "desc"}, {"attribute": "FailureDateTime"}},
		"limit":   25,
	})
	rows := h.referenceRows("OEMDriver", "Last3Days")
	rows = slices.DeleteFunc(rows, func(r map[string]string) bool {
		return !strings.Contains(r["FailureName"], "_") || !strings.Contains(r["FailureName"], "!") || r["CabIdHash"] == ""
	})
	sort.SliceStable(rows, func(i, j int) bool {
		a, _ := strconv.Atoi(rows[i]["EventCount"])
		b, _ := strconv.Atoi(rows[j]["EventCount"])
		if a != b {
			return a > b
		}
		return rows[i]["FailureDateTime"] < rows[j]["FailureDateTime"]
	})
	var want [][]string
	for _, r := range rows[:25] {
		want = append(want, []string{r["DriverName"], r["EventCount"]})
	}
	checkFile(t, got, []string{"DriverName", "EventCount"}, want)
}

func TestAggregatesOnlyYieldOneRow(t *testing.T) {
	h := newHarness(t, Options{RowsPerDay: 10}, testNow)
	got, _ := h.runTemplate(map[string]any{
		"view": "IHVDriver", "projection": []string{"COUNT(DeviceId)", "SUM(EventCount)"},
		"dateRange": map[string]string{"reportPeriod": "Yesterday"},
		"condition": map[string]any{"and": []any{map[string]string{"attribute": "Market", "operator": "eq", "value": "nowhere"}}},
	})
	checkFile(t, got, []string{"COUNT(DeviceId)", "SUM(EventCount)"}, [][]string{{"0", ""}})
}
