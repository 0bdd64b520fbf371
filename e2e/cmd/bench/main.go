// Command bench compares hdc-export's ingest with DuckDB's partitioned COPY
// on the same emulator report file, in one go (`make bench`):
//
//  1. it starts `hdc-export emulator` as its own process, serving one
//     report of the requested period and size;
//  2. downloads the newest run's file once, with the independent client;
//  3. runs DuckDB's
//     COPY (SELECT … FROM read_csv(…)) TO … (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))
//     on that file, in a child process, keeping the same retention window
//     as hdc-export;
//  4. runs `hdc-export run` (cabs off) against the emulator into a local lake;
//  5. checks that both outputs hold the same rows per date, and prints
//     wall time, rows/s, MB/s (of the report file) and peak RSS for each
//     (medians), and the median of the runs' speed ratios (each run times
//     the two sides back to back, in alternating order).
//
// Each side is a separate process measured from outside (wall clock and the
// kernel's peak RSS from wait4), so neither side's figures include the other
// or the emulator. hdc-export's time includes downloading the file over
// loopback; DuckDB's does not.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/hdc-export/hdc-export/e2e/apiclient"
)

const retentionDays = 30 // hdc-export's default window: today and the 29 dates before

func main() {
	if len(os.Args) == 5 && os.Args[1] == "-duckdb-copy" {
		if err := duckdbCopy(os.Args[2], os.Args[3], os.Args[4]); err != nil {
			fmt.Fprintln(os.Stderr, "duckdb copy:", err)
			os.Exit(1)
		}
		return
	}
	bin := flag.String("bin", "bin/hdc-export", "hdc-export binary")
	period := flag.String("period", "Last30Days", "report period of the emulator's report")
	rowsPerDay := flag.Int("rows-per-day", 20000, "rows per failure date")
	runs := flag.Int("runs", 3, "measurements per side; the median is reported")
	work := flag.String("dir", "", "work folder (default: a new temp folder, removed afterwards)")
	flag.Parse()
	if err := bench(*bin, *period, *rowsPerDay, *runs, *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sample is one measured process run.
type sample struct {
	wall time.Duration
	rss  int64 // peak resident set, bytes
}

func bench(bin, period string, rowsPerDay, runs int, dir string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "hdc-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	ctx := context.Background()
	addr, stop, err := startEmulator(bin, period, rowsPerDay)
	if err != nil {
		return err
	}
	defer stop()
	api := &apiclient.Client{BaseURL: "http://" + addr, TokenURL: "http://" + addr + "/demo-tenant/oauth2/token",
		ClientID: "demo-client", ClientSecret: "demo-secret", HTTP: &http.Client{Timeout: 30 * time.Minute}}

	report := filepath.Join(dir, "report.tsv")
	size, err := download(ctx, api, report)
	if err != nil {
		return err
	}
	cutoff := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -(retentionDays - 1)).Format(time.DateOnly)
	cfg, err := writeConfig(dir, period)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(os.Environ(), "HDC_API_URL=http://"+addr, "HDC_TOKEN_URL=http://"+addr+"/demo-tenant/oauth2/token",
		"HDC_CLIENT_SECRET=demo-secret", "HDC_CABS=off")

	// The machine's speed drifts between runs, so each run pairs the two
	// sides back to back, in alternating order, and the ratio reported is
	// the median of the pairs' ratios.
	var duck, hdc []sample
	var ratios []float64
	for i := range runs {
		runDuck := func() error {
			out := filepath.Join(dir, "duckdb")
			os.RemoveAll(out)
			s, err := measure(exec.Command(self, "-duckdb-copy", report, out, cutoff))
			if err != nil {
				return fmt.Errorf("duckdb: %w", err)
			}
			duck = append(duck, s)
			return nil
		}
		runHDC := func() error {
			lake := filepath.Join(dir, "lake")
			os.RemoveAll(lake)
			cmd := exec.Command(bin, "run", "--config", cfg)
			cmd.Env = append(env, "HDC_SINK_URL="+lake)
			s, err := measure(cmd)
			if err != nil {
				return fmt.Errorf("hdc-export run: %w", err)
			}
			hdc = append(hdc, s)
			return nil
		}
		first, second := runDuck, runHDC
		if i%2 == 1 {
			first, second = runHDC, runDuck
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		ratios = append(ratios, duck[i].wall.Seconds()/hdc[i].wall.Seconds())
		fmt.Fprintf(os.Stderr, "run %d/%d: duckdb %v %s, hdc-export %v %s, speed %.2fx\n", i+1, runs,
			duck[i].wall.Round(time.Millisecond), mib(duck[i].rss), hdc[i].wall.Round(time.Millisecond), mib(hdc[i].rss), ratios[i])
	}
	rows, err := sameRows(filepath.Join(dir, "duckdb"), filepath.Join(dir, "lake"))
	if err != nil {
		return err
	}
	d, h := median(duck), median(hdc)
	fmt.Printf("report: %s, %s, %d rows kept (window from %s), median of %d runs each\n\n", period, mb(size), rows, cutoff, runs)
	fmt.Printf("%-12s %10s %12s %8s %10s\n", "", "wall", "rows/s", "MB/s", "peak RSS")
	for _, r := range []struct {
		name string
		s    sample
	}{{"duckdb", d}, {"hdc-export", h}} {
		sec := r.s.wall.Seconds()
		fmt.Printf("%-12s %10s %12.0f %8.1f %10s\n", r.name, r.s.wall.Round(time.Millisecond), float64(rows)/sec, float64(size)/1e6/sec, mib(r.s.rss))
	}
	slices.Sort(ratios)
	fmt.Printf("\nhdc-export / duckdb: speed %.2fx (median of the runs' ratios; %.2fx to %.2fx), peak RSS %.2fx\n",
		ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1], float64(h.rss)/float64(d.rss))
	return nil
}

// startEmulator runs `hdc-export emulator` on a free port until stop.
func startEmulator(bin, period string, rowsPerDay int) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	days := strings.TrimSuffix(strings.TrimPrefix(period, "Last"), "Days")
	cmd := exec.Command(bin, "emulator", "--addr", addr, "--period", period, "--days", days, "--rows-per-day", fmt.Sprint(rowsPerDay))
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start emulator: %w", err)
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, errors.New("emulator did not start")
}

// download saves the newest finished run of the demo IHV report (id 1).
func download(ctx context.Context, api *apiclient.Client, path string) (int64, error) {
	now := time.Now().UTC()
	runs, err := api.Runs(ctx, 1, now.AddDate(0, 0, -2), now)
	if err != nil {
		return 0, err
	}
	runs = slices.DeleteFunc(runs, func(r apiclient.Run) bool { return !r.Finished() })
	if len(runs) == 0 {
		return 0, errors.New("the emulator has no finished run")
	}
	newest := slices.MaxFunc(runs, func(a, b apiclient.Run) int { return a.Time.Compare(b.Time) })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, newest.Location, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("download: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, resp.Body)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	return n, err
}

// writeConfig writes an hdc-export config exporting the demo IHV report.
// It reads the template from the repository, so bench runs from its root.
func writeConfig(dir, period string) (string, error) {
	tmpl, err := os.ReadFile("configs/templates/ihv_all_last7days.json")
	if err != nil {
		return "", err
	}
	tmpl = []byte(strings.Replace(string(tmpl), "Last7Days", period, 1))
	if err := os.WriteFile(filepath.Join(dir, "ihv.json"), tmpl, 0o600); err != nil {
		return "", err
	}
	cfg := `devcenter: {tenant_id: demo-tenant, client_id: demo-client}
sink: {url: ./lake}
temp_dir: ` + filepath.Join(dir, "tmp") + `
cabs: {enabled: false}
reports:
  - name: ihv_driver
    template_file: ihv.json
    schedule: {interval_hours: 24}
`
	path := filepath.Join(dir, "bench.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// measure runs cmd to completion and returns its wall time and peak RSS.
func measure(cmd *exec.Cmd) (sample, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%w: %s", err, tail(stderr.String()))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, errors.New("no rusage on this platform")
	}
	return sample{wall: wall, rss: ru.Maxrss << 10}, nil // Linux reports KiB
}

// duckdbCopy is the reference conversion, run in a child process.
func duckdbCopy(report, out, cutoff string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	q := fmt.Sprintf(`COPY (
  SELECT *, CAST(FailureDate AS DATE) AS date
  FROM read_csv('%s', delim = '\t', header = true)
  WHERE CAST(FailureDate AS DATE) >= DATE '%s'
) TO '%s' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))`, report, cutoff, out)
	_, err = db.Exec(q)
	return err
}

// sameRows checks that both outputs hold the same number of rows per date
// and returns the total.
func sameRows(duckOut, lake string) (int64, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	count := func(glob string) (map[string]int64, int64, error) {
		rows, err := db.Query(fmt.Sprintf(`SELECT CAST(date AS VARCHAR), count(*) FROM read_parquet('%s', hive_partitioning = true) GROUP BY 1`, glob))
		if err != nil {
			return nil, 0, err
		}
		defer rows.Close()
		m, total := map[string]int64{}, int64(0)
		for rows.Next() {
			var d string
			var n int64
			if err := rows.Scan(&d, &n); err != nil {
				return nil, 0, err
			}
			m[d], total = n, total+n
		}
		return m, total, rows.Err()
	}
	a, total, err := count(filepath.Join(duckOut, "**", "*.parquet"))
	if err != nil {
		return 0, fmt.Errorf("count duckdb output: %w", err)
	}
	b, _, err := count(filepath.Join(lake, "ihv_driver", "**", "*.parquet"))
	if err != nil {
		return 0, fmt.Errorf("count hdc-export lake: %w", err)
	}
	if len(a) != len(b) {
		return 0, fmt.Errorf("duckdb wrote %d dates, hdc-export %d", len(a), len(b))
	}
	for d, n := range a {
		if b[d] != n {
			return 0, fmt.Errorf("date %s: duckdb %d rows, hdc-export %d", d, n, b[d])
		}
	}
	return total, nil
}

func median(s []sample) sample {
	walls := slices.SortedFunc(slices.Values(s), func(a, b sample) int { return cmp.Compare(a.wall, b.wall) })
	rss := slices.SortedFunc(slices.Values(s), func(a, b sample) int { return cmp.Compare(a.rss, b.rss) })
	return sample{wall: walls[len(s)/2].wall, rss: rss[len(s)/2].rss}
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
func mb(b int64) string  { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
