package devcenter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Secret is a credential. It never prints: String, GoString, LogValue and
// MarshalJSON all redact it. Use Reveal only where the value is sent.
type Secret string

func (s Secret) String() string               { return redact(s) }
func (s Secret) GoString() string             { return redact(s) }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redact(s)) }
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redact(s)) }

// Reveal returns the secret's value for use on the wire.
func (s Secret) Reveal() string { return string(s) }

func redact(s Secret) string {
	if s == "" {
		return ""
	}
	return "[REDACTED]"
}

// ID is a template or report id. The API sends ids as numbers in most places
// and as strings in others; ID decodes both.
type ID int64

// UnmarshalJSON accepts 15, "15" and null (zero).
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*id = 0
		return nil
	}
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("id %q is not an integer", s)
	}
	*id = ID(n)
	return nil
}

// DateRange is a template's report period.
type DateRange struct {
	ReportPeriod string `json:"reportPeriod"`
}

// TemplateDef is a report template definition as created, edited and
// returned by the API. Condition, Aggregation and OrderBy are passed through
// as JSON.
type TemplateDef struct {
	View        string          `json:"view"`
	Projection  []string        `json:"projection"`
	DateRange   DateRange       `json:"dateRange"`
	Condition   json.RawMessage `json:"condition,omitempty"`
	Aggregation json.RawMessage `json:"aggregation,omitempty"`
	OrderBy     json.RawMessage `json:"orderby,omitempty"`
	Limit       *int            `json:"limit,omitempty"`
}

// Columns lists the columns a report of the template has, in file order:
// the projection, then the aggregation's aggregatedColumns. An aggregation
// that does not decode adds nothing (the API would reject the template).
func (d TemplateDef) Columns() []string {
	var agg struct {
		Columns []string `json:"aggregatedColumns"`
	}
	if len(d.Aggregation) > 0 {
		_ = json.Unmarshal(d.Aggregation, &agg)
	}
	return append(slices.Clone(d.Projection), agg.Columns...)
}

// PeriodDays is the number of failure dates a report period covers, or 0
// for an unknown period.
func PeriodDays(period string) int {
	switch p := strings.ToLower(strings.TrimSpace(period)); {
	case p == "yesterday":
		return 1
	case strings.HasPrefix(p, "last") && strings.HasSuffix(p, "days"):
		n, err := strconv.Atoi(p[len("last") : len(p)-len("days")])
		if err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// Canonical returns a normalised JSON form of the definition, for matching
// a configured template against the service's echo of it. Two definitions
// with equal canonical forms describe the same report. What the reference
// documents (or the client's header-bound parsing makes) equivalent
// compares equal:
//
//   - limit 0 and an absent limit (0 "means all records");
//   - letter case of object keys (the service's JSON binding ignores it),
//     of the view and period names, of operators and sort directions, and
//     of aggregate function names ("sum(EventCount)" is "SUM(EventCount)");
//   - whitespace around names and inside aggregate expressions (not inside
//     a condition's value, which is data), and JSON formatting;
//   - the order of the projection, of aggregatedColumns, and of the
//     clauses of a condition's "and" and "or": a report file names its
//     columns in its header, which ingest binds by name, and a conjunction
//     does not depend on its order. The orderby list keeps its order: it
//     sets the sort priority;
//   - empty, null and absent parts (condition {}, "or": []).
func (d TemplateDef) Canonical() string {
	c := map[string]any{
		"view":       strings.ToLower(strings.TrimSpace(d.View)),
		"period":     strings.ToLower(strings.TrimSpace(d.DateRange.ReportPeriod)),
		"projection": canonicalSet(d.Projection, strings.TrimSpace),
	}
	for key, raw := range map[string]json.RawMessage{"condition": d.Condition, "aggregation": d.Aggregation, "orderby": d.OrderBy} {
		if v := canonicalJSON(raw, key); v != nil {
			c[key] = v
		}
	}
	if d.Limit != nil && *d.Limit != 0 {
		c["limit"] = *d.Limit
	}
	b, _ := json.Marshal(c) // maps encode with sorted keys
	return string(b)
}

// canonicalSet returns the distinct normalised elements of ss, sorted.
func canonicalSet(ss []string, norm func(string) string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, norm(s))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// canonicalJSON decodes raw and normalises it (see canonicalValue); raw
// that does not decode is kept as a string, so it still compares by bytes.
func canonicalJSON(raw json.RawMessage, key string) any {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	return canonicalValue(v, key)
}

// unorderedLists are the keys whose arrays are sets (see Canonical).
var unorderedLists = map[string]bool{"and": true, "or": true, "aggregatedcolumns": true}

// canonicalValue normalises a decoded JSON value found under key (lower
// case): keys lower-cased, empty parts dropped (nil), names trimmed and
// their case folded where the API ignores it, unordered lists sorted.
func canonicalValue(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			k = strings.ToLower(strings.TrimSpace(k))
			if cv := canonicalValue(val, k); cv != nil {
				out[k] = cv
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		out := make([]any, 0, len(x))
		for _, el := range x {
			if key == "aggregatedcolumns" {
				el = canonicalValue(el, "attribute") // each element is an expression
			} else {
				el = canonicalValue(el, "")
			}
			if el != nil {
				out = append(out, el)
			}
		}
		if len(out) == 0 {
			return nil
		}
		if unorderedLists[key] {
			slices.SortFunc(out, func(a, b any) int {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				return bytes.Compare(ja, jb)
			})
		}
		return out
	case string:
		switch key {
		case "value":
			return x // data: compared exactly
		case "operator", "sort":
			return strings.ToLower(strings.TrimSpace(x))
		case "attribute":
			return canonicalExpr(x)
		}
		return strings.TrimSpace(x)
	}
	return v
}

// canonicalExpr normalises a column name or an aggregate expression such
// as " sum( EventCount )": no whitespace, the function name upper case.
func canonicalExpr(s string) string {
	s = strings.Join(strings.Fields(s), "")
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		return strings.ToUpper(s[:i]) + s[i:]
	}
	return s
}

// Template is a stored template.
type Template struct {
	ID       ID
	Def      TemplateDef
	Created  time.Time
	Modified time.Time
}

// Schedule is when a scheduled report runs: at StartTime, then every
// Interval hours (at least 12), Recurrence times in all.
type Schedule struct {
	Start      time.Time `json:"startTime"`
	Interval   int       `json:"recurrenceInterval"`
	Recurrence int       `json:"recurrence"`
}

// Report is a scheduled report.
type Report struct {
	ID         ID
	TemplateID ID
	Schedule   Schedule
	Active     bool
	Created    time.Time
	Modified   time.Time
}

// Status is a run's state, normalised from the API's spellings.
type Status int

// Run states. Completed covers the documented "Completed" and the observed
// "Success".
const (
	StatusUnknown Status = iota
	StatusPending
	StatusInProgress
	StatusCompleted
	StatusFailed
)

func (s Status) String() string {
	return [...]string{"unknown", "pending", "in_progress", "completed", "failed"}[s]
}

// ParseStatus normalises a ReportStatus value (case, spaces and the
// observed synonyms).
func ParseStatus(s string) Status {
	switch strings.ToLower(strings.NewReplacer(" ", "", "_", "", "-", "").Replace(s)) {
	case "completed", "complete", "success", "succeeded":
		return StatusCompleted
	case "failed", "failure", "error":
		return StatusFailed
	case "pending", "queued", "notstarted":
		return StatusPending
	case "inprogress", "running", "processing":
		return StatusInProgress
	}
	return StatusUnknown
}

// Run is one execution of a scheduled report. The API has no execution id:
// a run is identified by its time.
type Run struct {
	Time     time.Time // ReportDatetime, UTC
	Status   Status
	Location string // download link; "" unless completed
}

// apiTimeLayouts are the timestamp spellings the API uses: no zone (UTC),
// variable fractional digits, sometimes a Z.
var apiTimeLayouts = []string{"2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"}

// ParseAPITime parses an API timestamp such as "2018-06-24T16:39:46.683" as
// UTC.
func ParseAPITime(s string) (time.Time, error) {
	for _, l := range apiTimeLayouts {
		if t, err := time.ParseInLocation(l, strings.TrimSpace(s), time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q not understood", s)
}
