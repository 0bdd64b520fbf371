package apiclient

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseFailureDate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2026-11-05", "2026-11-05"},
		{"11/5/2026", "2026-11-05"},
		{"1/02/2026", "2026-01-02"},
		{"110526", "2026-11-05"},
		{"2026-11-05 00:00:00", "2026-11-05"},
		{"2026-11-05T13:14:15", "2026-11-05"},
		{" 2026-11-05 ", "2026-11-05"},
	} {
		got, err := ParseFailureDate(tc.in)
		if err != nil {
			t.Errorf("ParseFailureDate(%q): %v", tc.in, err)
			continue
		}
		if got.Format(DateLayout) != tc.want {
			t.Errorf("ParseFailureDate(%q) = %s, want %s", tc.in, got.Format(DateLayout), tc.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "123"} {
		if _, err := ParseFailureDate(bad); err == nil {
			t.Errorf("ParseFailureDate(%q) succeeded", bad)
		}
	}
}

func TestParseFileSniffs(t *testing.T) {
	plain := "A,B,EventCount\n1,\"x,y\",3\n2,z,4\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.ReplaceAll(plain, ",", "\t")))
	zw.Close()
	for name, tc := range map[string]struct {
		body  []byte
		gzip  bool
		delim rune
	}{
		"csv":    {[]byte(plain), false, ','},
		"tsv.gz": {gz.Bytes(), true, '\t'},
	} {
		f, err := ParseFile(tc.body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Gzipped != tc.gzip || f.Delimiter != tc.delim || len(f.Rows) != 2 || f.Column("eventcount") != 2 {
			t.Errorf("%s: got gzip=%v delim=%q rows=%d header=%q", name, f.Gzipped, f.Delimiter, len(f.Rows), f.Header)
		}
	}
}

// TestGroundTruthOwnership checks the newest-run-wins rule, the retention
// window and the tolerant decoding against a tiny hand-made server.
func TestGroundTruthOwnership(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	// Yesterday-style period of 3 days: a run on day R covers R-3..R-1.
	files := map[string]string{
		// 11-18 run covers 15,16,17; the window (5 days on the 21st) starts at
		// the 17th, so only its 17th row can count, and the 20 run owns it.
		"r18": "FailureDate\tFailureDateTime\tEventCount\n11/17/2026\t2026-11-17 00:00:01\t100\n",
		// 11-19 run: Failed, never read.
		// 11-20 run covers 17,18,19.
		"r20": "FailureDate\tFailureDateTime\tEventCount\n2026-11-17\t2026-11-17 00:00:01\t1\n2026-11-17\t2026-11-17 00:00:02\t2\n2026-11-19\t2026-11-19 10:00:00\t5\n",
		// 11-21 run covers 18,19,20 (gzip, comma, "Success"); the 19th has no
		// row here yet, so its partition must be empty.
		"r21": "FailureDate,FailureDateTime,EventCount\n112026,2026-11-20 00:00:00,7\n112026,2026-11-20 00:00:00,1.0\n111826,2026-11-18 00:00:00,9\n",
	}
	srv := httptest.NewServer(nil)
	defer srv.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenant/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("resource") != Resource || r.Form.Get("client_secret") != "s" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":"3599","access_token":"tok"}`)
	})
	api := func(data string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer tok" {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, `{"data":%s,"errors":[]}`, data)
		}
	}
	def, _ := json.Marshal(`{"view":"IHVDriver","projection":["FailureDate"],"dateRange":{"reportPeriod":"Last3Days"}}`)
	mux.HandleFunc("GET /analytics/driver/reporttemplate", api(`[{"templateId":"4","template":`+string(def)+`}]`))
	mux.HandleFunc("GET /analytics/driver/report", api(`[{"reportId":9,"templateId":4,"isActive":true}]`))
	mux.HandleFunc("GET /analytics/driver/reportdata/9", api(fmt.Sprintf(`[
		{"ReportDatetime":"2026-11-18T02:00:00","ReportStatus":"Completed","ReportLocation":"%[1]s/b/r18"},
		{"ReportDatetime":"2026-11-19T02:00:00","ReportStatus":"Failed","ReportLocation":""},
		{"ReportDatetime":"2026-11-20T02:00:00","ReportStatus":"Completed","ReportLocation":"%[1]s/b/r20"},
		{"ReportDatetime":"2026-11-21T02:00:00","ReportStatus":"Success","ReportLocation":"%[1]s/b/r21"},
		{"ReportDatetime":"2026-11-21T11:55:00","ReportStatus":"Pending","ReportLocation":""}]`, srv.URL)))
	mux.HandleFunc("GET /b/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "blob links take no bearer token", http.StatusBadRequest)
			return
		}
		body := files[r.PathValue("name")]
		if r.PathValue("name") == "r21" {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(body))
			zw.Close()
			body = b.String()
		}
		fmt.Fprint(w, body)
	})
	srv.Config.Handler = mux

	c := &Client{BaseURL: srv.URL, TokenURL: srv.URL + "/tenant/oauth2/token", ClientID: "c", ClientSecret: "s"}
	tr, err := c.GroundTruth(context.Background(), "IHVDriver", 5, now)
	if err != nil {
		t.Fatal(err)
	}
	ms := func(s string) int64 { ts, _ := ParseTimestamp(s); return ts.UnixMilli() }
	want := map[string]Totals{
		"2026-11-17": {2, 3, ms("2026-11-17 00:00:01") + ms("2026-11-17 00:00:02")},
		"2026-11-18": {1, 9, ms("2026-11-18 00:00:00")},
		"2026-11-20": {2, 8, 2 * ms("2026-11-20 00:00:00")},
	}
	if fmt.Sprint(tr.Days) != fmt.Sprint(want) {
		t.Errorf("Days = %v, want %v", tr.Days, want)
	}
	if tr.ReportID != 9 || tr.Period != 3 || tr.WindowFirst.Format(DateLayout) != "2026-11-17" {
		t.Errorf("report %d period %d window %s", tr.ReportID, tr.Period, tr.WindowFirst.Format(DateLayout))
	}
	if got := tr.Owner["2026-11-19"].Format(DateLayout); got != "2026-11-21" {
		t.Errorf("owner of 2026-11-19 = %s, want the 2026-11-21 run", got)
	}
	if tr.Files != 2 || tr.Gzipped != 1 || tr.Delimiters[','] != 1 || tr.Delimiters['\t'] != 1 {
		t.Errorf("files %d gzipped %d delimiters %v", tr.Files, tr.Gzipped, tr.Delimiters)
	}
}
