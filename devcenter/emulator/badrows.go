package emulator

// badValue is what a bad row's EventCount holds: not a number.
const badValue = "not-a-number"

// badRows wraps a file's row writer so that every opts.BadRowEvery-th data
// row has EventCount replaced by badValue, which an importer cannot type.
// Files without an EventCount column, or BadRowEvery 0, are unchanged.
// The choice depends only on the row's position, so a file stays a pure
// function of the options and its spec.
func (e *Emulator) badRows(header []string, write func([]string) error) func([]string) error {
	col := -1
	for i, h := range header {
		if h == "EventCount" {
			col = i
		}
	}
	every := e.opts.BadRowEvery
	if every <= 0 || col < 0 {
		return write
	}
	n := 0
	return func(row []string) error {
		n++
		if n%every != 0 {
			return write(row)
		}
		bad := append([]string(nil), row...)
		bad[col] = badValue
		return write(bad)
	}
}
