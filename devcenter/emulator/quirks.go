package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Quirks switch on behaviours that the API reference allows (or leaves
// open) and that a real service may show, so that clients can be tested
// against them. The zero value is the emulator's plain behaviour.
type Quirks struct {
	// LimitEcho changes how a template's limit is echoed by the list and
	// get endpoints: "" as stored, "zero" echoes an absent limit as
	// "limit": 0 (the docs: 0 means all records), "drop" drops a limit of 0.
	LimitEcho string
	// NormalizedEcho echoes template definitions the way a service that
	// stores them parsed might: PascalCase keys at every level, indented
	// JSON, the projection in alphabetical order, operators in upper case
	// and aggregate function names in lower case; and schedules with
	// PascalCase keys and startTime without its "Z".
	NormalizedEcho bool
	// PageSize, when positive, makes the list endpoints (reporttemplate,
	// report, reportdata) answer at most PageSize elements per page, with
	// an absolute "@nextLink" to the next page (a skip query parameter),
	// as the legacy analytics endpoints page.
	PageSize int
	// ExclusiveBounds makes reportdata's startDate and endDate exclusive:
	// only runs on the days strictly between them are listed. (The docs do
	// not say; the emulator's default is inclusive.)
	ExclusiveBounds bool
	// SlowLinkRate, when positive, sends every blob body (report files,
	// cabs) at this many bytes per second, in small steady chunks: a slow
	// link that never stalls.
	SlowLinkRate int
}

// The LimitEcho values.
const (
	LimitEchoZero = "zero"
	LimitEchoDrop = "drop"
)

func (q Quirks) validate() error {
	switch {
	case q.LimitEcho != "" && q.LimitEcho != LimitEchoZero && q.LimitEcho != LimitEchoDrop:
		return fmt.Errorf("LimitEcho %q is not \"\", %q or %q", q.LimitEcho, LimitEchoZero, LimitEchoDrop)
	case q.PageSize < 0:
		return fmt.Errorf("PageSize %d is negative", q.PageSize)
	case q.SlowLinkRate < 0:
		return fmt.Errorf("SlowLinkRate %d is negative", q.SlowLinkRate)
	}
	return nil
}

// echoDefinition is the template definition as the list and get endpoints
// return it (a JSON string), under LimitEcho and NormalizedEcho.
func (e *Emulator) echoDefinition(t *template) string {
	def := t.def
	switch e.opts.Quirks.LimitEcho {
	case LimitEchoZero:
		if def.Limit == nil {
			zero := 0
			def.Limit = &zero
		}
	case LimitEchoDrop:
		if def.Limit != nil && *def.Limit == 0 {
			def.Limit = nil
		}
	}
	b, err := json.Marshal(def)
	if err != nil { // cannot happen: the definition was validated on the way in
		panic(fmt.Sprintf("encoding template %d: %v", t.id, err))
	}
	if !e.opts.Quirks.NormalizedEcho {
		return string(b)
	}
	var v any
	_ = json.Unmarshal(b, &v)
	b, _ = json.MarshalIndent(normalize(v, ""), "", "    ")
	return string(b)
}

// normalize rewrites a decoded definition as NormalizedEcho describes;
// key is the (original) key v was found under.
func normalize(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[pascal(k)] = normalize(val, k)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = normalize(el, key)
		}
		if key == "projection" {
			slices.SortFunc(out, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		}
		return out
	case string:
		switch key {
		case "operator":
			return strings.ToUpper(x)
		case "aggregatedColumns", "attribute":
			if i := strings.IndexByte(x, '('); i > 0 {
				return strings.ToLower(x[:i]) + x[i:]
			}
		}
	}
	return v
}

// pascal upper-cases the first letter of a key ("orderby" → "Orderby").
func pascal(k string) string {
	if k == "orderby" {
		return "OrderBy"
	}
	r := []rune(k)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

// echoSchedule is a schedule as GET report echoes it (a JSON string).
func (e *Emulator) echoSchedule(s schedule) string {
	var v any = scheduleJSON{StartTime: s.start.Format(time.RFC3339), RecurrenceInterval: s.interval, Recurrence: s.recurrence}
	if e.opts.Quirks.NormalizedEcho {
		v = map[string]any{"StartTime": s.start.Format(runTimeLayout), "RecurrenceInterval": s.interval, "Recurrence": s.recurrence}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// pageEnvelope is a success envelope with a next-page link.
type pageEnvelope struct {
	Data     any         `json:"data"`
	Errors   []errorItem `json:"errors"`
	NextLink string      `json:"@nextLink,omitempty"`
}

// writeList writes items as a list answer: whole, or under PageSize the
// page the skip query parameter selects, with "@nextLink" to the next.
func writeList[T any](e *Emulator, w http.ResponseWriter, r *http.Request, items []T) error {
	size := e.opts.Quirks.PageSize
	if size <= 0 {
		writeData(w, http.StatusOK, items)
		return nil
	}
	skip := 0
	if s := r.URL.Query().Get("skip"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return badRequest("skip %q must be a non-negative integer", s)
		}
		skip = n
	}
	skip = min(skip, len(items))
	end := min(skip+size, len(items))
	env := pageEnvelope{Data: items[skip:end], Errors: []errorItem{}}
	if end < len(items) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		q := r.URL.Query()
		q.Set("skip", strconv.Itoa(end))
		env.NextLink = (&url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}).String()
	}
	writeJSON(w, http.StatusOK, env)
	return nil
}

// runBounds turns reportdata's window of whole days [from, to] into the
// window the service answers for: itself, or under ExclusiveBounds the
// days strictly between the two dates. ok is false for an empty window.
func (e *Emulator) runBounds(from, to time.Time) (time.Time, time.Time, bool) {
	if !e.opts.Quirks.ExclusiveBounds {
		return from, to, true
	}
	from, to = from.Add(24*time.Hour), to.Add(-24*time.Hour)
	return from, to, !from.After(to)
}

// slowLink wraps w to send its body at SlowLinkRate bytes per second, in
// chunks of a twentieth of a second, flushed one by one; w as it is when
// SlowLinkRate is 0.
func (e *Emulator) slowLink(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if e.opts.Quirks.SlowLinkRate <= 0 {
		return w
	}
	return &trickleWriter{ResponseWriter: w, ctx: r.Context(), rate: e.opts.Quirks.SlowLinkRate}
}

type trickleWriter struct {
	http.ResponseWriter
	ctx  context.Context
	rate int // bytes per second
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (tw *trickleWriter) Unwrap() http.ResponseWriter { return tw.ResponseWriter }

func (tw *trickleWriter) Write(p []byte) (int, error) {
	chunk := max(tw.rate/20, 1)
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		m, err := tw.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		_ = http.NewResponseController(tw.ResponseWriter).Flush()
		p = p[n:]
		t := time.NewTimer(time.Duration(n) * time.Second / time.Duration(tw.rate))
		select {
		case <-t.C:
		case <-tw.ctx.Done():
			t.Stop()
			return written, tw.ctx.Err()
		}
	}
	return written, nil
}
