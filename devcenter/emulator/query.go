package emulator

import (
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// query is a template compiled into the pipeline that turns a run's rows
// into its file:
//
//  1. condition keeps the rows it matches;
//  2. without aggregate columns, each row is projected; with them, rows are
//     grouped by the plain projected columns and each group yields one row
//     (a template of aggregates only yields exactly one row, even with no
//     rows to aggregate);
//  3. aggregation.condition keeps the groups it matches (HAVING);
//  4. orderby sorts, stably; without it rows keep the generation order
//     (oldest date first) and groups the order of their first row;
//  5. limit > 0 keeps the first limit rows.
//
// All covered failure dates go through the pipeline together, so
// aggregates span the whole run.
//
// The file's columns are the projection, in its order, then the aggregate
// columns of aggregation.aggregatedColumns not already projected. The header
// of an aggregate column is the expression as the template wrote it (e.g.
// "sum(EventCount)"); the docs do not say. A projection entry of the form
// FUNC(Column) is taken as an aggregate column in place (the docs' samples
// list aggregates only in aggregatedColumns, but clients put them in the
// projection too); listing an expression in both places yields one column,
// at its projection position.
//
// A query is immutable once compiled, so it is safe for concurrent use.
type query struct {
	where *condition // over a record, by column id; nil keeps every row

	// out are the columns of the pipeline's rows: the file's columns, then
	// hidden ones that only aggregation.condition or orderby refer to.
	out     []outColumn
	visible int // len of the file's columns

	aggregated bool       // out has aggregate columns: rows are grouped
	having     *condition // over a group's row, by out index; nil keeps all
	order      []sortKey
	limit      int // 0 means all rows
}

// outColumn is a column of the pipeline's rows.
type outColumn struct {
	header string   // as written in the template; for hidden columns the canonical key
	col    columnID // the column, or the aggregated column
	agg    aggExpr  // agg.fn is aggNone for a plain column
}

func (c outColumn) kind() valueKind {
	if c.agg.fn != aggNone {
		return c.agg.kind()
	}
	return columnKind(c.col)
}

// key identifies c among the pipeline's columns: the column name, or the
// aggregate's canonical spelling.
func (c outColumn) key() string {
	if c.agg.fn != aggNone {
		return c.agg.key()
	}
	return columnNames[c.col]
}

// sortKey is one orderby entry, resolved to an out index.
type sortKey struct {
	index int
	kind  valueKind
	desc  bool
}

// aggregationDef is the template's aggregation object.
type aggregationDef struct {
	AggregatedColumns []string        `json:"aggregatedColumns"`
	Condition         json.RawMessage `json:"condition"`
}

// orderDef is one orderby entry.
type orderDef struct {
	Attribute string `json:"attribute"`
	Sort      string `json:"sort"`
}

// compileQuery validates the parts of def that shape the file and compiles
// them for view v. Errors are 400s naming the offending field.
func compileQuery(def templateDef, v viewID) (*query, error) {
	q := &query{}
	if len(def.Projection) == 0 {
		return nil, badRequest("projection is required: list at least one column of view %s", v)
	}
	for i, name := range def.Projection {
		path := fmt.Sprintf("projection[%d]", i)
		c, err := projectionColumn(name, v, path)
		if err != nil {
			return nil, err
		}
		if q.find(c.key()) >= 0 {
			return nil, badRequest("%s: column %q is listed twice", path, name)
		}
		q.out = append(q.out, c)
	}

	var agg aggregationDef
	if def.Aggregation != nil {
		if err := json.Unmarshal(def.Aggregation, &agg); err != nil {
			return nil, badRequest("aggregation must be an object with aggregatedColumns (an array of strings) and an optional condition")
		}
	}
	for i, expr := range agg.AggregatedColumns {
		path := fmt.Sprintf("aggregation.aggregatedColumns[%d]", i)
		e, isAgg, err := parseAggExpr(expr, v, path)
		switch {
		case err != nil:
			return nil, err
		case !isAgg:
			return nil, badRequest("%s: %q is not FUNC(Column) with FUNC one of %s", path, expr, aggFuncList)
		}
		if j := q.find(e.key()); j >= 0 {
			if j >= len(def.Projection) {
				return nil, badRequest("%s: %q is listed twice", path, expr)
			}
			continue // already projected
		}
		q.out = append(q.out, outColumn{header: expr, col: e.col, agg: e})
	}
	q.visible = len(q.out)
	q.aggregated = slices.ContainsFunc(q.out, func(c outColumn) bool { return c.agg.fn != aggNone })

	var err error
	if q.where, err = compileCondition(dropNull(def.Condition), "condition", rowResolver(v)); err != nil {
		return nil, err
	}
	if q.having, err = compileCondition(dropNull(agg.Condition), "aggregation.condition", q.outResolver(v)); err != nil {
		return nil, err
	}
	if q.having != nil && !q.aggregated {
		return nil, badRequest("aggregation.condition needs aggregate columns: list them in aggregation.aggregatedColumns")
	}
	if err := q.compileOrder(def.OrderBy, v); err != nil {
		return nil, err
	}
	if def.Limit != nil {
		if *def.Limit < 0 {
			return nil, badRequest("limit must be >= 0 (0 means all records), got %d", *def.Limit)
		}
		q.limit = *def.Limit
	}
	return q, nil
}

// projectionColumn resolves a projection entry: a column of v, or FUNC(Column).
func projectionColumn(name string, v viewID, path string) (outColumn, error) {
	e, isAgg, err := parseAggExpr(name, v, path)
	switch {
	case err != nil:
		return outColumn{}, err
	case isAgg:
		return outColumn{header: name, col: e.col, agg: e}, nil
	}
	col, ok := columnsByName[v][name]
	if !ok {
		return outColumn{}, badRequest("%s: column %q is not available in view %s", path, name, v)
	}
	return outColumn{header: name, col: col}, nil
}

// compileOrder resolves orderby. An entry's attribute is a column of the
// view or an aggregate expression; sort is asc or desc in any letter case,
// asc when absent. With aggregate columns, a plain attribute must be a
// projected (grouping) column; an aggregate may be one the file does not
// show. Without, any column of the view may be used, but no aggregate.
func (q *query) compileOrder(raw json.RawMessage, v viewID) error {
	if raw == nil {
		return nil
	}
	var entries []orderDef
	if err := json.Unmarshal(raw, &entries); err != nil {
		return badRequest("orderby must be an array of {attribute, sort} objects")
	}
	resolve := q.outResolver(v)
	for i, entry := range entries {
		path := fmt.Sprintf("orderby[%d]", i)
		attr := strings.TrimSpace(entry.Attribute)
		if attr == "" {
			return badRequest("%s.attribute is required: a column or an aggregate expression", path)
		}
		key := sortKey{}
		switch strings.ToLower(strings.TrimSpace(entry.Sort)) {
		case "", "asc":
		case "desc":
			key.desc = true
		default:
			return badRequest("%s.sort %q is not supported: use asc or desc", path, entry.Sort)
		}
		var err error
		if key.index, key.kind, err = resolve(attr, path+".attribute"); err != nil {
			return err
		}
		q.order = append(q.order, key)
	}
	return nil
}

// find is the out index of the column with key, or -1.
func (q *query) find(key string) int {
	return slices.IndexFunc(q.out, func(c outColumn) bool { return c.key() == key })
}

// rowResolver resolves the attributes of condition: columns of v, by id.
func rowResolver(v viewID) attrResolver {
	return func(attr, path string) (int, valueKind, error) {
		if _, isAgg, _ := parseAggExpr(attr, v, path); isAgg {
			return 0, 0, badRequest("%s: %q is an aggregate; filter aggregates in aggregation.condition", path, attr)
		}
		col, ok := columnsByName[v][attr]
		if !ok {
			return 0, 0, badRequest("%s: column %q is not available in view %s", path, attr, v)
		}
		return int(col), columnKind(col), nil
	}
}

// outResolver resolves attributes over the pipeline's rows (for
// aggregation.condition and orderby), adding hidden columns as needed: an
// aggregate not in the file, or, without aggregation, a column not
// projected.
func (q *query) outResolver(v viewID) attrResolver {
	return func(attr, path string) (int, valueKind, error) {
		e, isAgg, err := parseAggExpr(attr, v, path)
		if err != nil {
			return 0, 0, err
		}
		var c outColumn
		switch {
		case isAgg && !q.aggregated:
			return 0, 0, badRequest("%s: %q is an aggregate, but the template aggregates nothing: list it in aggregation.aggregatedColumns", path, attr)
		case isAgg:
			c = outColumn{header: e.key(), col: e.col, agg: e}
		default:
			col, ok := columnsByName[v][attr]
			if !ok {
				return 0, 0, badRequest("%s: column %q is not available in view %s", path, attr, v)
			}
			c = outColumn{header: attr, col: col}
		}
		if i := q.find(c.key()); i >= 0 {
			return i, q.out[i].kind(), nil
		}
		if q.aggregated && !isAgg {
			return 0, 0, badRequest("%s: column %q is neither projected nor aggregated, so it has no value per group", path, attr)
		}
		q.out = append(q.out, c)
		return len(q.out) - 1, c.kind(), nil
	}
}

// header is the file's header row.
func (q *query) header() []string {
	h := make([]string, q.visible)
	for i, c := range q.out[:q.visible] {
		h[i] = c.header
	}
	return h
}

// run feeds rows through the pipeline, calling emit with each of the file's
// rows in order. rows may reuse its record between iterations; emit must
// not keep the slice it is given. run stops at emit's first error.
func (q *query) run(rows iter.Seq[*record], emit func([]string) error) error {
	if !q.aggregated && len(q.order) == 0 {
		return q.stream(rows, emit)
	}
	var result [][]string
	if q.aggregated {
		result = q.aggregate(rows)
	} else {
		for rec := range rows {
			if q.where.match(rec[:]) {
				result = append(result, q.project(rec, make([]string, len(q.out))))
			}
		}
	}
	if q.having != nil {
		result = slices.DeleteFunc(result, func(row []string) bool { return !q.having.match(row) })
	}
	if len(q.order) > 0 {
		slices.SortStableFunc(result, q.compareRows)
	}
	if q.limit > 0 && len(result) > q.limit {
		result = result[:q.limit]
	}
	for _, row := range result {
		if err := emit(row[:q.visible]); err != nil {
			return err
		}
	}
	return nil
}

// stream is run without grouping or sorting: rows go straight to emit.
func (q *query) stream(rows iter.Seq[*record], emit func([]string) error) error {
	fields := make([]string, len(q.out))
	n := 0
	for rec := range rows {
		if q.limit > 0 && n == q.limit {
			break
		}
		if !q.where.match(rec[:]) {
			continue
		}
		if err := emit(q.project(rec, fields)); err != nil {
			return err
		}
		n++
	}
	return nil
}

// project fills fields with rec's values of the (plain) out columns.
func (q *query) project(rec *record, fields []string) []string {
	for i, c := range q.out {
		fields[i] = rec[c.col]
	}
	return fields
}

// group is one group of an aggregated query.
type group struct {
	row  []string       // the plain columns' values; aggregates filled in at the end
	accs []*accumulator // one per aggregate column, by out index (nil for plain ones)
}

// aggregate groups the rows matching where by the plain out columns and
// returns one row per group, in the order of the groups' first rows.
func (q *query) aggregate(rows iter.Seq[*record]) [][]string {
	var groups []*group
	index := make(map[string]*group)
	var key strings.Builder
	for rec := range rows {
		if !q.where.match(rec[:]) {
			continue
		}
		key.Reset()
		for _, c := range q.out {
			if c.agg.fn == aggNone {
				key.WriteString(rec[c.col])
				key.WriteByte(0) // generated values never contain NUL
			}
		}
		g := index[key.String()]
		if g == nil {
			g = q.newGroup(rec)
			index[key.String()] = g
			groups = append(groups, g)
		}
		for i, acc := range g.accs {
			if acc != nil {
				acc.add(rec[q.out[i].col])
			}
		}
	}
	if len(groups) == 0 && !slices.ContainsFunc(q.out, func(c outColumn) bool { return c.agg.fn == aggNone }) {
		groups = append(groups, q.newGroup(&record{})) // aggregates only: one row, like SQL
	}
	result := make([][]string, len(groups))
	for i, g := range groups {
		for j, acc := range g.accs {
			if acc != nil {
				g.row[j] = acc.result()
			}
		}
		result[i] = g.row
	}
	return result
}

// newGroup starts the group of rec.
func (q *query) newGroup(rec *record) *group {
	g := &group{row: make([]string, len(q.out)), accs: make([]*accumulator, len(q.out))}
	for i, c := range q.out {
		if c.agg.fn == aggNone {
			g.row[i] = rec[c.col]
		} else {
			g.accs[i] = newAccumulator(c.agg)
		}
	}
	return g
}

// compareRows orders two pipeline rows by the orderby keys.
func (q *query) compareRows(a, b []string) int {
	for _, k := range q.order {
		c := compareValues(a[k.index], b[k.index], k.kind)
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}
