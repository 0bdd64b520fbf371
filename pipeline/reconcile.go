package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
)

// reconcile makes sure the report's template and a schedule for it exist in
// Dev Center, matching templates by content so nothing is duplicated, and
// returns the scheduled report's id.
func (r *Runner) reconcile(ctx context.Context, rc ReportConfig) (devcenter.ID, error) {
	templates, err := r.API.ListTemplates(ctx)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	want := rc.Template.Canonical()
	var templateID devcenter.ID
	for _, t := range templates {
		if t.Def.Canonical() == want && (templateID == 0 || t.ID < templateID) {
			templateID = t.ID
		}
	}
	if templateID == 0 {
		if templateID, err = r.API.CreateTemplate(ctx, rc.Template); err != nil {
			return 0, fmt.Errorf("reconcile: %w", err)
		}
		r.Log.Info("created report template", "report", rc.Name, "template_id", int64(templateID))
	}
	reports, err := r.API.ListReports(ctx)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	var found *devcenter.Report
	for i, rep := range reports {
		if rep.TemplateID != templateID {
			continue
		}
		// Prefer an active schedule, then the oldest (it has the most runs).
		if found == nil || (rep.Active && !found.Active) || (rep.Active == found.Active && rep.ID < found.ID) {
			found = &reports[i]
		}
	}
	if found != nil {
		if !found.Active {
			r.Log.Warn("the report's schedule is paused; exporting the runs it has", "report", rc.Name, "report_id", int64(found.ID))
		}
		return found.ID, nil
	}
	s := devcenter.Schedule{Start: rc.Schedule.Start, Interval: rc.Schedule.IntervalHours, Recurrence: rc.Schedule.Recurrence}
	if s.Start.IsZero() {
		s.Start = r.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	}
	id, err := r.API.ScheduleReport(ctx, templateID, s, "")
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	r.Log.Info("scheduled report", "report", rc.Name, "report_id", int64(id), "first_run", s.Start)
	return id, nil
}
