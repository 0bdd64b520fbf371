package emulator

import "time"

// The demo schedules run daily at demoRunHour:00 UTC, far into the future.
const (
	demoRunHour    = 2
	demoInterval   = 24 // hours
	demoRecurrence = 10000
	demoPeriod     = "Last7Days" // unless Options.Period says otherwise
)

// addDemoAccount adds the demo templates and schedules. The schedules start
// so that, at New, the union of the failure dates covered by all runs so far
// is exactly the last Options.Days dates before the newest run: the first
// run is at 02:00 UTC, Days-7 days before the newest 02:00 not after now
// (today's, or yesterday's before 02:00). Runs keep appearing as the clock
// advances.
func (e *Emulator) addDemoAccount() {
	now := e.now()
	newest := now.Add(-demoRunHour * time.Hour).Truncate(24 * time.Hour).Add(demoRunHour * time.Hour)
	start := newest.AddDate(0, 0, -(e.opts.Days - reportPeriods[e.opts.Period]))
	created := start.Add(-24 * time.Hour)

	for _, d := range []struct {
		templateID, reportID int
		view                 viewID
	}{
		{DemoIHVTemplateID, DemoIHVReportID, viewIHV},
		{DemoOEMTemplateID, DemoOEMReportID, viewOEM},
	} {
		t, err := compileTemplate(templateDef{
			View:       d.view.String(),
			Projection: columnNamesOf(viewColumns[d.view]),
			DateRange:  dateRange{ReportPeriod: e.opts.Period},
		})
		if err != nil {
			panic("emulator: invalid demo template: " + err.Error())
		}
		t.id, t.created, t.modified = d.templateID, created, created
		e.templates[t.id] = t
		e.reports[d.reportID] = &report{
			id:         d.reportID,
			templateID: d.templateID,
			sched:      schedule{start: start, interval: demoInterval, recurrence: demoRecurrence},
			demo:       true,
			created:    created,
			modified:   created,
		}
	}
	e.nextTemplateID = max(DemoIHVTemplateID, DemoOEMTemplateID) + 1
	e.nextReportID = max(DemoIHVReportID, DemoOEMReportID) + 1
}
