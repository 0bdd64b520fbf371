package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"slices"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/sinks"
)

// Change is one step of a reconcile plan, printable as a diff line.
type Change struct {
	Report string       `json:"report"`
	Op     string       `json:"op"` // "+" create, "~" update, "=" unchanged
	What   string       `json:"what"`
	ID     devcenter.ID `json:"id,omitempty"`
	apply  func(ctx context.Context) (devcenter.ID, error)
}

func (c Change) String() string {
	return fmt.Sprintf("%s %s: %s", c.Op, c.Report, c.What)
}

// Reconcile makes Dev Center hold the configured templates and schedules:
// a template is matched by content (never duplicated), a changed one is
// edited in place if this lake created or adopted it, a missing schedule
// is created, a paused one resumed, and an explicitly configured interval
// or recurrence enforced. With dryRun it only plans. It returns the plan
// and the scheduled report id of each report (0 where not yet created).
func (r *Runner) Reconcile(ctx context.Context, dryRun bool) ([]Change, map[string]devcenter.ID, error) {
	plan, ids, failed, err := r.reconcileAll(ctx, dryRun)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, rc := range r.Config.Reports {
		if failed[rc.Name] != nil {
			errs = append(errs, failed[rc.Name])
		}
	}
	return plan, ids, errors.Join(errs...)
}

// reconcileAll is Reconcile with each report's error kept apart (so a
// cycle can fail one report and export the others); err is set only when
// Dev Center's lists could not be read, which fails every report.
func (r *Runner) reconcileAll(ctx context.Context, dryRun bool) (plan []Change, ids map[string]devcenter.ID, failed map[string]error, err error) {
	templates, err := r.API.ListTemplates(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reconcile: %w", err)
	}
	reports, err := r.API.ListReports(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reconcile: %w", err)
	}
	ids, failed = map[string]devcenter.ID{}, map[string]error{}
	for _, rc := range r.Config.Reports {
		changes, id, err := r.reconcileOne(ctx, rc, templates, reports, dryRun)
		plan = append(plan, changes...)
		ids[rc.Name] = id
		if err != nil {
			failed[rc.Name] = fmt.Errorf("reconcile %s: %w", rc.Name, err)
		}
	}
	return plan, ids, failed, nil
}

func (r *Runner) reconcileOne(ctx context.Context, rc ReportConfig, templates []devcenter.Template, reports []devcenter.Report, dryRun bool) ([]Change, devcenter.ID, error) {
	var bound lake.Binding
	if err := lake.GetJSON(ctx, r.Sink, lake.BindingKey(rc.Name), &bound); err != nil && !errors.Is(err, sinks.ErrNotFound) {
		return nil, 0, err
	}
	var plan []Change
	want := rc.Template.Canonical()
	tpl := findTemplate(templates, func(t devcenter.Template) bool { return t.Def.Canonical() == want })
	switch {
	case tpl != nil:
		plan = append(plan, Change{Report: rc.Name, Op: "=", What: fmt.Sprintf("template #%d", tpl.ID), ID: tpl.ID})
	case bound.TemplateID != 0 && findTemplate(templates, func(t devcenter.Template) bool { return t.ID == bound.TemplateID }) != nil:
		old := findTemplate(templates, func(t devcenter.Template) bool { return t.ID == bound.TemplateID })
		id := old.ID
		plan = append(plan, Change{Report: rc.Name, Op: "~", ID: id,
			What: fmt.Sprintf("edit template #%d: %s", id, templateDiff(old.Def, rc.Template)),
			apply: func(ctx context.Context) (devcenter.ID, error) {
				return id, r.API.EditTemplate(ctx, id, rc.Template)
			}})
	default:
		plan = append(plan, Change{Report: rc.Name, Op: "+", What: "create template " + describe(rc.Template),
			apply: func(ctx context.Context) (devcenter.ID, error) { return r.API.CreateTemplate(ctx, rc.Template) }})
	}
	templateID := plan[0].ID

	var sched *devcenter.Report
	if templateID != 0 {
		for i, rep := range reports {
			if rep.TemplateID != templateID {
				continue
			}
			// Prefer the bound schedule, then an active one, then the oldest.
			if sched == nil || rep.ID == bound.ReportID || (sched.ID != bound.ReportID &&
				((rep.Active && !sched.Active) || (rep.Active == sched.Active && rep.ID < sched.ID))) {
				sched = &reports[i]
			}
		}
	}
	s := rc.Schedule
	switch {
	case sched == nil:
		ns := newSchedule(s, r.now())
		plan = append(plan, Change{Report: rc.Name, Op: "+",
			What: fmt.Sprintf("schedule every %dh, %d runs from %s", ns.Interval, ns.Recurrence, ns.Start.Format(time.RFC3339)),
			apply: func(ctx context.Context) (devcenter.ID, error) {
				return r.API.ScheduleReport(ctx, plan[0].ID, ns, "")
			}})
	case (s.IntervalHours != 0 && s.IntervalHours != sched.Schedule.Interval) || (s.Recurrence != 0 && s.Recurrence != sched.Schedule.Recurrence) ||
		(!s.Start.IsZero() && !s.Start.Equal(sched.Schedule.Start)):
		ns := sched.Schedule
		ns.Interval = cmpOr(s.IntervalHours, ns.Interval)
		ns.Recurrence = cmpOr(s.Recurrence, ns.Recurrence)
		if !s.Start.IsZero() {
			ns.Start = s.Start
		}
		id := sched.ID
		plan = append(plan, Change{Report: rc.Name, Op: "~", ID: id,
			What: fmt.Sprintf("edit schedule #%d: every %dh → %dh, %d → %d runs", id, sched.Schedule.Interval, ns.Interval, sched.Schedule.Recurrence, ns.Recurrence),
			apply: func(ctx context.Context) (devcenter.ID, error) {
				return id, r.API.EditReport(ctx, id, plan[0].ID, ns)
			}})
	case !sched.Active:
		id := sched.ID
		plan = append(plan, Change{Report: rc.Name, Op: "~", ID: id, What: fmt.Sprintf("resume paused schedule #%d", id),
			apply: func(ctx context.Context) (devcenter.ID, error) { return id, r.API.ResumeReport(ctx, id) }})
	default:
		plan = append(plan, Change{Report: rc.Name, Op: "=", What: fmt.Sprintf("schedule #%d", sched.ID), ID: sched.ID})
	}
	if dryRun {
		return plan, plan[1].ID, nil
	}
	for i := range plan {
		if plan[i].apply == nil {
			continue
		}
		id, err := plan[i].apply(ctx)
		if err != nil {
			return plan, 0, err
		}
		plan[i].ID = id
		r.Log.Info("reconciled", "change", plan[i].String())
	}
	b := lake.Binding{TemplateID: plan[0].ID, ReportID: plan[1].ID}
	if b != bound {
		if err := r.fence(ctx); err != nil {
			return plan, b.ReportID, err
		}
		if err := lake.PutJSON(ctx, r.Sink, lake.BindingKey(rc.Name), b); err != nil {
			return plan, b.ReportID, err
		}
	}
	return plan, b.ReportID, nil
}

func findTemplate(ts []devcenter.Template, match func(devcenter.Template) bool) *devcenter.Template {
	var best *devcenter.Template
	for i, t := range ts {
		if match(t) && (best == nil || t.ID < best.ID) {
			best = &ts[i]
		}
	}
	return best
}

func newSchedule(s ScheduleConfig, now time.Time) devcenter.Schedule {
	ns := devcenter.Schedule{Start: s.Start, Interval: cmpOr(s.IntervalHours, DefaultIntervalHours), Recurrence: cmpOr(s.Recurrence, DefaultRecurrence)}
	if ns.Start.IsZero() {
		ns.Start = now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	}
	return ns
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func describe(d devcenter.TemplateDef) string {
	return fmt.Sprintf("(%s, %d columns, %s)", strings.TrimSpace(d.View), len(d.Projection), d.DateRange.ReportPeriod)
}

// templateDiff names what changed between two definitions.
func templateDiff(old, new devcenter.TemplateDef) string {
	var parts []string
	var added, removed []string
	for _, c := range new.Projection {
		if !slices.Contains(old.Projection, c) {
			added = append(added, "+"+c)
		}
	}
	for _, c := range old.Projection {
		if !slices.Contains(new.Projection, c) {
			removed = append(removed, "-"+c)
		}
	}
	if len(added)+len(removed) > 0 {
		parts = append(parts, "projection "+strings.Join(append(added, removed...), " "))
	}
	if old.DateRange.ReportPeriod != new.DateRange.ReportPeriod {
		parts = append(parts, fmt.Sprintf("period %s → %s", old.DateRange.ReportPeriod, new.DateRange.ReportPeriod))
	}
	if strings.TrimSpace(old.View) != strings.TrimSpace(new.View) {
		parts = append(parts, fmt.Sprintf("view %s → %s", old.View, new.View))
	}
	o, n := old, new
	o.Projection, n.Projection, o.DateRange, n.DateRange, o.View, n.View = nil, nil, devcenter.DateRange{}, devcenter.DateRange{}, "", ""
	if o.Canonical() != n.Canonical() {
		parts = append(parts, "condition/aggregation/order/limit changed")
	}
	if len(parts) == 0 {
		return "definition changed"
	}
	return strings.Join(parts, "; ")
}
