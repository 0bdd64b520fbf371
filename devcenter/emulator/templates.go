package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reportPeriods maps each dateRange.reportPeriod to the number of failure
// dates a run covers.
var reportPeriods = map[string]int{
	"Yesterday": 1, "Last3Days": 3, "Last7Days": 7, "Last10Days": 10,
	"Last15Days": 15, "Last30Days": 30, "Last60Days": 60, "Last90Days": 90,
}

// periodNames lists reportPeriods' keys in ascending length, for messages.
var periodNames = []string{"Yesterday", "Last3Days", "Last7Days", "Last10Days",
	"Last15Days", "Last30Days", "Last60Days", "Last90Days"}

// templateDef is a report template definition as clients send it, and as
// the list and get endpoints echo it inside a JSON-encoded string.
type templateDef struct {
	View        string          `json:"view"`
	Projection  []string        `json:"projection"`
	DateRange   dateRange       `json:"dateRange"`
	Condition   json.RawMessage `json:"condition,omitempty"`
	Aggregation json.RawMessage `json:"aggregation,omitempty"`
	OrderBy     json.RawMessage `json:"orderby,omitempty"`
	Limit       *int            `json:"limit,omitempty"`
}

type dateRange struct {
	ReportPeriod string `json:"reportPeriod"`
}

// template is a stored report template. Its definition is stored as
// received (view and period names canonicalized) and echoed back; the
// compiled query applies it to the generated files.
type template struct {
	id       int
	def      templateDef // canonical view and period names
	view     viewID
	query    *query // projection, condition, aggregation, orderby, limit
	period   int    // failure dates covered by a run
	revision int    // bumped by every edit; keys the file cache
	created  time.Time
	modified time.Time
}

// templateItem is an element of GET reporttemplate and the data of GET
// reporttemplate/{id} (which omits the timestamps).
type templateItem struct {
	TemplateID       int    `json:"templateId"`
	Template         string `json:"template"`
	CreatedDatetime  string `json:"createdDatetime,omitempty"`
	ModifiedDatetime string `json:"modifiedDatetime,omitempty"`
}

// createTemplate serves POST reporttemplate: 201 {"data":{"templateId":N},"errors":null}.
func (e *Emulator) createTemplate(w http.ResponseWriter, r *http.Request) error {
	t, err := readTemplate(w, r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	t.id = e.nextTemplateID
	e.nextTemplateID++
	t.created = e.now()
	t.modified = t.created
	e.templates[t.id] = t
	e.mu.Unlock()
	writeJSON(w, http.StatusCreated, envelope{Data: map[string]int{"templateId": t.id}})
	return nil
}

// listTemplates serves GET reporttemplate: all templates in id order.
func (e *Emulator) listTemplates(w http.ResponseWriter, r *http.Request) error {
	e.mu.Lock()
	items := make([]templateItem, 0, len(e.templates))
	for _, t := range e.templates {
		items = append(items, templateItem{
			TemplateID:       t.id,
			Template:         e.echoDefinition(t),
			CreatedDatetime:  t.created.Format(listTimeLayout),
			ModifiedDatetime: t.modified.Format(listTimeLayout),
		})
	}
	e.mu.Unlock()
	slices.SortFunc(items, func(a, b templateItem) int { return a.TemplateID - b.TemplateID })
	return writeList(e, w, r, items)
}

// getTemplate serves GET reporttemplate/{id}.
func (e *Emulator) getTemplate(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "templateId")
	if err != nil {
		return err
	}
	e.mu.Lock()
	t, ok := e.templates[id]
	var item templateItem
	if ok {
		item = templateItem{TemplateID: t.id, Template: e.echoDefinition(t)}
	}
	e.mu.Unlock()
	if !ok {
		return notFound("template %d does not exist", id)
	}
	writeData(w, http.StatusOK, item)
	return nil
}

// editTemplate serves POST reporttemplate/{id}: a full replace, validated
// like a new template. It answers 201 with the id as a string, reproducing
// the docs' edit example. Scheduled reports use the new definition for every
// file generated after the edit, including files of earlier runs.
func (e *Emulator) editTemplate(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "templateId")
	if err != nil {
		return err
	}
	e.mu.Lock()
	_, exists := e.templates[id]
	e.mu.Unlock()
	if !exists {
		return notFound("template %d does not exist", id)
	}
	t, err := readTemplate(w, r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	old := e.templates[id]
	t.id, t.created, t.modified, t.revision = id, old.created, e.now(), old.revision+1
	e.templates[id] = t
	e.mu.Unlock()
	writeData(w, http.StatusCreated, map[string]string{"templateId": strconv.Itoa(id)})
	return nil
}

// definitionJSON is the template definition as the JSON string the list and
// get endpoints return.
func (t *template) definitionJSON() string {
	b, err := json.Marshal(t.def)
	if err != nil { // cannot happen: the raw parts were validated on the way in
		panic(fmt.Sprintf("encoding template %d: %v", t.id, err))
	}
	return string(b)
}

// readTemplate decodes and validates a template definition from the request
// body. Error messages name the offending field.
func readTemplate(w http.ResponseWriter, r *http.Request) (*template, error) {
	var def templateDef
	if err := decodeBody(w, r, &def); err != nil {
		return nil, err
	}
	return compileTemplate(def)
}

// compileTemplate validates def, canonicalizes the view and period names,
// drops JSON nulls from the optional parts and compiles the query (see
// query and condition for the semantics).
func compileTemplate(def templateDef) (*template, error) {
	t := &template{}
	if strings.TrimSpace(def.View) == "" {
		return nil, badRequest("view is required: use IHVDriver or OEMDriver")
	}
	view, ok := parseView(def.View)
	if !ok {
		return nil, badRequest("view %q is not supported: use IHVDriver or OEMDriver", def.View)
	}
	t.view, def.View = view, view.String()

	period, name, ok := parsePeriod(def.DateRange.ReportPeriod)
	switch {
	case def.DateRange.ReportPeriod == "":
		return nil, badRequest("dateRange.reportPeriod is required: use one of %s", strings.Join(periodNames, ", "))
	case !ok:
		return nil, badRequest("dateRange.reportPeriod %q is not supported: use one of %s", def.DateRange.ReportPeriod, strings.Join(periodNames, ", "))
	}
	t.period, def.DateRange.ReportPeriod = period, name

	def.Condition, def.Aggregation, def.OrderBy = dropNull(def.Condition), dropNull(def.Aggregation), dropNull(def.OrderBy)
	q, err := compileQuery(def, view)
	if err != nil {
		return nil, err
	}
	t.query = q
	t.def = def
	return t, nil
}

// parsePeriod resolves a reportPeriod name, ignoring letter case.
func parsePeriod(s string) (days int, canonical string, ok bool) {
	for _, name := range periodNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return reportPeriods[name], name, true
		}
	}
	return 0, "", false
}

// dropNull maps an absent or JSON null value to nil.
func dropNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}
