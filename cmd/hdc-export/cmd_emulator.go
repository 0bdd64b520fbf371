package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

// cmdEmulator serves the emulator until ctx is cancelled.
func cmdEmulator(ctx context.Context, args []string, stderr io.Writer) error {
	addr, o, err := emulatorOptions(args, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: emulator.New(o).Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "Dev Center emulator on http://%s (token URL http://%s/%s/oauth2/token)\n", ln.Addr(), ln.Addr(), o.TenantID)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// demoSecret is the emulator demo account's client secret. It protects
// nothing: the emulator serves synthetic data.
const demoSecret = "demo-secret"

// emulatorOptions parses the emulator command's flags: the listen address
// and the emulator's options, validated.
func emulatorOptions(args []string, stderr io.Writer) (string, emulator.Options, error) {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	var o emulator.Options
	fs.Int64Var(&o.Seed, "seed", 1, "data seed")
	fs.IntVar(&o.Days, "days", 35, "failure dates covered by the demo schedules' runs")
	fs.StringVar(&o.Period, "period", "Last7Days", "the demo templates' reportPeriod, e.g. Last90Days")
	fs.IntVar(&o.RowsPerDay, "rows-per-day", 200, "rows per view per failure date")
	fs.BoolVar(&o.Gzip, "gzip", false, "serve report files gzip-compressed")
	delim := fs.String("delimiter", "tab", "report file delimiter: tab or comma")
	fs.BoolVar(&o.StatusSuccess, "status-success", false, `report finished runs as "Success" instead of "Completed"`)
	fs.StringVar(&o.DateFormat, "date-format", "", "FailureDate format: iso, mdy, mmddyy or datetime")
	fs.StringVar(&o.TenantID, "tenant", "demo-tenant", "accepted tenant id")
	fs.StringVar(&o.ClientID, "client-id", "demo-client", "accepted client id")
	fs.StringVar(&o.ClientSecret, "client-secret", demoSecret, "accepted client secret")
	fs.IntVar(&o.BadRowEvery, "bad-row-every", 0, "make every Nth data row's EventCount not a number (0: none)")
	faults := fs.String("faults", "", `inject faults, e.g. "429=0.2,500=0.1,truncate=0.05,expire=0.1,slow=0.05"`)
	fs.Float64Var(&o.CabFaults.OffAllowlistRate, "cab-off-allowlist-rate", 0, "fraction of cabs whose download redirects to a host off any allowlist")
	fs.Float64Var(&o.CabFaults.CorruptRate, "cab-corrupt-rate", 0, "fraction of cabs served with bytes that fail their reported MD5")
	fs.IntVar(&o.CabFaults.CorruptAttempts, "cab-corrupt-attempts", 0, "corrupt only a cab's first N downloads (0: every download)")
	fs.Int64Var(&o.Shapes.HugeLine, "huge-line", 0, "put one line of this many bytes after each report file's header (streamed)")
	fs.BoolVar(&o.Shapes.HugeLineQuoted, "huge-line-quoted", false, "open the huge line with a quote that is never closed")
	fs.Int64Var(&o.Shapes.RandomBody, "random-body", 0, "replace each report file's rows with this many random bytes (streamed)")
	fs.IntVar(&o.Shapes.ExtraColumns, "extra-columns", 0, "add this many undocumented columns to each report file")
	fs.BoolVar(&o.Shapes.CoverageEndsOnRunDay, "coverage-ends-on-run-day", false, "read LastNDays as the N days ending with the run's day")
	fs.BoolVar(&o.Shapes.Empty, "empty-files", false, "serve header-only report files")
	fs.IntVar(&o.Shapes.ShiftDays, "shift-days", 0, "move every row's FailureDate by this many days (negative: earlier)")
	shapesFrom := fs.String("shapes-from", "", "apply the file shapes only to runs at or after this RFC 3339 time (default: every run)")
	fs.StringVar(&o.Quirks.LimitEcho, "limit-echo", "", `echo template limits: "zero" (an absent limit as 0) or "drop" (a limit of 0 dropped)`)
	fs.BoolVar(&o.Quirks.NormalizedEcho, "normalized-echo", false, "echo templates and schedules normalised (PascalCase keys, reordered projection)")
	fs.IntVar(&o.Quirks.PageSize, "page-size", 0, "page list answers with @nextLink, this many elements a page (0: no paging)")
	fs.BoolVar(&o.Quirks.ExclusiveBounds, "exclusive-bounds", false, "treat reportdata's startDate and endDate as exclusive")
	fs.IntVar(&o.Quirks.SlowLinkRate, "slow-link-rate", 0, "send every blob body at this many bytes a second, steadily (0: full speed)")
	if err := fs.Parse(args); err != nil {
		return "", o, usageError{err}
	}
	if *shapesFrom != "" {
		t, err := time.Parse(time.RFC3339, *shapesFrom)
		if err != nil {
			return "", o, usageError{fmt.Errorf("--shapes-from %q: want an RFC 3339 time such as 2026-12-01T02:00:00Z", *shapesFrom)}
		}
		o.Shapes.From = t
	}
	if *faults != "" {
		f, err := emulator.ParseFaults(*faults)
		if err != nil {
			return "", o, usageError{fmt.Errorf("--faults: %w", err)}
		}
		o.Faults = f
	}
	switch *delim {
	case "tab", "\t":
		o.Delimiter = '\t'
	case "comma", ",":
		o.Delimiter = ','
	default:
		return "", o, usageError{fmt.Errorf("--delimiter %q: want tab or comma", *delim)}
	}
	if err := o.Validate(); err != nil {
		return "", o, usageError{err}
	}
	return *addr, o, nil
}
