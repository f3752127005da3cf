package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

var metricLine = regexp.MustCompile(`^(bucketsqlite_[a-z_]+)\{database="todos"\} (\S+)$`)

// scrapeMetrics GETs /metrics as Prometheus would and returns the
// bucketsqlite_ series of the todos database by name.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	goRuntime := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		goRuntime = goRuntime || strings.HasPrefix(sc.Text(), "go_goroutines ")
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%q: %v", sc.Text(), err)
			}
			out[m[1]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !goRuntime {
		t.Errorf("GET /metrics has no go_goroutines: the Go collector is missing")
	}
	return out
}

// GET /metrics and GET /debug/vars report the database's flushes, and
// move when it flushes.
func TestMetricsAndDebugVars(t *testing.T) {
	t.Cleanup(func() { bucket.ForgetMem("server-metrics") })
	s := start(t, "mem://server-metrics/todos.db?flush_interval=0")

	before := scrapeMetrics(t, s.url)
	if len(before) != 26 {
		t.Errorf("GET /metrics has %d bucketsqlite_ series for todos, want 26: %v", len(before), before)
	}
	for _, name := range []string{"bucketsqlite_flushes_total", "bucketsqlite_uploads_total", "bucketsqlite_last_flush_timestamp_seconds"} {
		if v, ok := before[name]; !ok || v != 0 {
			t.Errorf("before a flush: %s = %v (present: %v), want 0", name, v, ok)
		}
	}

	if code := call(t, "POST", s.url+"/todos", `{"title":"watch it"}`, nil); code != http.StatusCreated {
		t.Fatalf("POST /todos = %d", code)
	}
	var fl struct {
		Uploaded bool  `json:"uploaded"`
		Bytes    int64 `json:"bytes"`
	}
	if code := call(t, "POST", s.url+"/flush", "", &fl); code != http.StatusOK || !fl.Uploaded {
		t.Fatalf("POST /flush = %d %+v", code, fl)
	}

	after := scrapeMetrics(t, s.url)
	for name, want := range map[string]float64{
		"bucketsqlite_flushes_total":        1,
		"bucketsqlite_uploads_total":        1,
		"bucketsqlite_skips_total":          0,
		"bucketsqlite_flush_failures_total": 0,
		"bucketsqlite_uploaded_bytes_total": float64(fl.Bytes),
		"bucketsqlite_last_flush_failed":    0,
		"bucketsqlite_conflicted":           0,
	} {
		if got := after[name]; got != want {
			t.Errorf("after a flush: %s = %v, want %v", name, got, want)
		}
	}
	if after["bucketsqlite_last_flush_timestamp_seconds"] <= 0 || after["bucketsqlite_last_upload_timestamp_seconds"] <= 0 {
		t.Errorf("after a flush, the last flush and upload times are %v and %v",
			after["bucketsqlite_last_flush_timestamp_seconds"], after["bucketsqlite_last_upload_timestamp_seconds"])
	}

	var vars map[string]json.RawMessage
	if code := call(t, "GET", s.url+"/debug/vars", "", &vars); code != http.StatusOK {
		t.Fatalf("GET /debug/vars = %d", code)
	}
	var st struct {
		Flushes       int64  `json:"flushes"`
		Uploads       int64  `json:"uploads"`
		BytesUploaded int64  `json:"bytes_uploaded"`
		LastFlush     string `json:"last_flush"`
	}
	if err := json.Unmarshal(vars["bucketsqlite.todos"], &st); err != nil {
		t.Fatalf("GET /debug/vars: bucketsqlite.todos = %s: %v", vars["bucketsqlite.todos"], err)
	}
	if st.Flushes != 1 || st.Uploads != 1 || st.BytesUploaded != fl.Bytes || st.LastFlush == "" {
		t.Errorf("GET /debug/vars: bucketsqlite.todos = %s", vars["bucketsqlite.todos"])
	}
	if _, ok := vars["memstats"]; !ok {
		t.Errorf("GET /debug/vars has no memstats: not expvar's handler?")
	}

	if err, logs := s.stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
}
