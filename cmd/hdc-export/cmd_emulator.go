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
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *faults != "" {
		f, err := emulator.ParseFaults(*faults)
		if err != nil {
			return usageError{fmt.Errorf("--faults: %w", err)}
		}
		o.Faults = f
	}
	switch *delim {
	case "tab", "\t":
		o.Delimiter = '\t'
	case "comma", ",":
		o.Delimiter = ','
	default:
		return usageError{fmt.Errorf("--delimiter %q: want tab or comma", *delim)}
	}
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", *addr)
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
