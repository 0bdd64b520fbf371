// Command hdc-export exports Windows driver-failure reports from Microsoft
// Hardware Dev Center into a Parquet data lake, mirrors their cab files, and
// purges everything older than the retention window.
//
//	hdc-export run --config FILE        one cycle, for external schedulers
//	hdc-export purge --config FILE      enforce retention (--dry-run, --check)
//	hdc-export emulator --addr ADDR     serve the Dev Center emulator
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hdc-export/hdc-export/internal/version"
)

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT is set:
// it makes the collector work harder before the process grows, so large
// reports stay within a container's memory.
const defaultMemoryLimit = 192 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// usageError marks errors that should exit with exitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

const usage = `usage: hdc-export <command> [flags]

commands:
  run        run one export cycle and exit (for cron, Kubernetes CronJob, Airflow, systemd timers)
  serve      run cycles on a cron schedule; serve /healthz, /metrics and the report-ready callback
  apply      reconcile the configured templates and schedules with Dev Center (--dry-run)
  ddl        print Athena CREATE EXTERNAL TABLE and DuckDB views for the datasets
  status     show what the lake holds per dataset
  purge      delete everything older than the retention window (--dry-run, --check)
  doctor     check a deployment: sink abilities and Dev Center credentials (--apply-lifecycle)
  emulator   serve the Dev Center API emulator with its demo account
  version    print the version (also --version)

Run 'hdc-export <command> -h' for a command's flags.
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderrW io.Writer, getenv func(string) string) int {
	stderr := newConsole(stderrW)
	defer stderr.setProgress("")
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	code := exitOK
	switch args[0] {
	case "run":
		code, err = cmdRun(ctx, args[1:], stdout, stderr, getenv)
	case "serve":
		err = cmdServe(ctx, args[1:], stderr, getenv)
	case "apply":
		err = cmdApply(ctx, args[1:], stdout, stderr, getenv)
	case "ddl":
		err = cmdDDL(ctx, args[1:], stdout, stderr, getenv)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout, stderr, getenv)
	case "purge":
		code, err = cmdPurge(ctx, args[1:], stdout, stderr, getenv)
	case "doctor":
		err = cmdDoctor(ctx, args[1:], stdout, stderr, getenv)
	case "emulator":
		err = cmdEmulator(ctx, args[1:], stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version.String())
		return exitOK
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		err = usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	if err == nil {
		return code
	}
	if errors.Is(err, flag.ErrHelp) { // -h, --help: the flag set printed its usage
		return exitOK
	}
	stderr.fail(args[0], err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	if code == exitOK {
		code = exitFailed
	}
	return code
}

// newLogger builds the one slog handler of the process. If w is the
// process's console, it is told the logger (see console.setLogger).
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	var log *slog.Logger
	switch format {
	case "text":
		log = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		log = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return nil, usageError{fmt.Errorf("--log-format %q: want text or json", format)}
	}
	if c, ok := w.(*console); ok {
		c.setLogger(log, format == "json")
	}
	return log, nil
}
