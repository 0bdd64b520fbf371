package emulator

import (
	"regexp"
	"strconv"
	"strings"
)

// aggFunc is an aggregate function of aggregation.aggregatedColumns.
type aggFunc int

const (
	aggNone aggFunc = iota // a plain column
	aggSum
	aggAvg
	aggCount
	aggDCount
	aggMin
	aggMax
)

// aggFuncNames spells the functions as the docs do; templates may use any
// letter case.
var aggFuncNames = []string{aggSum: "SUM", aggAvg: "AVG", aggCount: "COUNT", aggDCount: "DCOUNT", aggMin: "MIN", aggMax: "MAX"}

// aggFuncList is the accepted functions, for messages.
const aggFuncList = "SUM, AVG, COUNT, DCOUNT, MIN, MAX"

// aggregateShape matches FUNC(Column), with optional spaces.
var aggregateShape = regexp.MustCompile(`^\s*([A-Za-z]+)\s*\(\s*([A-Za-z]+)\s*\)\s*$`)

// aggExpr is a parsed FUNC(Column).
type aggExpr struct {
	fn  aggFunc
	col columnID
}

// key is the canonical spelling of e, which identifies it however the
// template spells it: "sum( EventCount )" and "SUM(EventCount)" are one
// expression.
func (e aggExpr) key() string { return aggFuncNames[e.fn] + "(" + columnNames[e.col] + ")" }

// kind is the kind of e's values: counts, sums and averages are numbers,
// MIN and MAX keep their column's kind.
func (e aggExpr) kind() valueKind {
	if e.fn == aggMin || e.fn == aggMax {
		return columnKind(e.col)
	}
	return kindNumber
}

// parseAggExpr parses s as FUNC(Column) of view v. isAgg is false, with no
// error, if s does not have that shape (it may be a column name). Function
// names are case-insensitive, column names case-sensitive (as everywhere in
// the API). SUM and AVG need a numeric column. path names s in errors.
func parseAggExpr(s string, v viewID, path string) (e aggExpr, isAgg bool, err error) {
	m := aggregateShape.FindStringSubmatch(s)
	if m == nil {
		return aggExpr{}, false, nil
	}
	for fn, name := range aggFuncNames {
		if name != "" && strings.EqualFold(m[1], name) {
			e.fn = aggFunc(fn)
		}
	}
	if e.fn == aggNone {
		return e, true, badRequest("%s: %q is not FUNC(Column) with FUNC one of %s", path, s, aggFuncList)
	}
	col, ok := columnsByName[v][m[2]]
	if !ok {
		return e, true, badRequest("%s: column %q is not available in view %s", path, m[2], v)
	}
	e.col = col
	if (e.fn == aggSum || e.fn == aggAvg) && columnKind(col) != kindNumber {
		return e, true, badRequest("%s: %s needs a numeric column (EventCount or ReportId), not %s", path, aggFuncNames[e.fn], m[2])
	}
	return e, true, nil
}

// accumulator folds one aggregate over a group's rows:
//
//   - COUNT counts rows;
//   - DCOUNT counts distinct non-empty values (exact, case-sensitive);
//   - SUM and AVG add the values that parse as numbers; with none, the
//     result is empty (SQL's NULL);
//   - MIN and MAX ignore empty values and compare as compareValues does;
//     among equal values the first seen wins.
//
// Sums and averages are formatted by formatDecimal.
type accumulator struct {
	expr     aggExpr
	rows     int64
	sum      float64
	numbers  int64
	best     string
	hasBest  bool
	distinct map[string]struct{}
}

func newAccumulator(e aggExpr) *accumulator {
	a := &accumulator{expr: e}
	if e.fn == aggDCount {
		a.distinct = make(map[string]struct{})
	}
	return a
}

// add folds in v, the row's value of the aggregated column.
func (a *accumulator) add(v string) {
	a.rows++
	switch a.expr.fn {
	case aggSum, aggAvg:
		if f, ok := parseNumber(v); ok {
			a.sum += f
			a.numbers++
		}
	case aggDCount:
		if v != "" {
			a.distinct[v] = struct{}{}
		}
	case aggMin, aggMax:
		if v == "" {
			return
		}
		c := compareValues(v, a.best, a.expr.kind())
		if !a.hasBest || (a.expr.fn == aggMin && c < 0) || (a.expr.fn == aggMax && c > 0) {
			a.best, a.hasBest = v, true
		}
	}
}

// result is the aggregate's value as written to the file.
func (a *accumulator) result() string {
	switch a.expr.fn {
	case aggCount:
		return strconv.FormatInt(a.rows, 10)
	case aggDCount:
		return strconv.Itoa(len(a.distinct))
	case aggSum:
		if a.numbers == 0 {
			return ""
		}
		return formatDecimal(a.sum)
	case aggAvg:
		if a.numbers == 0 {
			return ""
		}
		return formatDecimal(a.sum / float64(a.numbers))
	default: // MIN, MAX
		return a.best
	}
}
