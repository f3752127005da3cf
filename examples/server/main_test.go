package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// server is the example running in the test process.
type server struct {
	url     string
	cancel  context.CancelFunc
	done    chan error    // run's result
	logDone chan struct{} // closed when logs is complete
	logs    bytes.Buffer

	once sync.Once
	err  error
}

var listening = regexp.MustCompile(`msg=listening url=(http://\S+)`)

// start runs the example on a free port of 127.0.0.1 and returns once it
// is listening. The test's cleanup stops it if the test does not.
func start(t *testing.T, dsn string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{cancel: cancel, done: make(chan error, 1), logDone: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		err := run(ctx, []string{"-addr", "127.0.0.1:0", "-dsn", dsn}, pw)
		pw.Close()
		s.done <- err
	}()
	urls := make(chan string, 1)
	go func() {
		defer close(s.logDone)
		defer close(urls)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.logs.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && s.url == "" {
				s.url = m[1]
				urls <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { s.stop() })
	if _, ok := <-urls; !ok {
		err, logs := s.stop()
		t.Fatalf("the server did not start: %v\n%s", err, logs)
	}
	return s
}

// stop cancels the server's context, as SIGINT would, and returns run's
// result and everything the server logged.
func (s *server) stop() (error, string) {
	s.once.Do(func() {
		s.cancel()
		s.err = <-s.done
		<-s.logDone
	})
	return s.err, s.logs.String()
}

// call sends a request with an optional JSON body, decodes the JSON reply
// into out (when not nil) and returns the status code.
func call(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, url, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// The whole API, then a shutdown: the final flush puts the to-do added
// after the explicit flush into the bucket.
func TestTodosSurviveShutdown(t *testing.T) {
	dsn := "file://" + t.TempDir() + "/todos.db?flush_interval=0"
	s := start(t, dsn)

	var t1, t2 todo
	if code := call(t, "POST", s.url+"/todos", `{"title":"buy milk"}`, &t1); code != http.StatusCreated || t1.ID != 1 || t1.Title != "buy milk" || t1.Done {
		t.Fatalf("POST /todos = %d %+v", code, t1)
	}
	if code := call(t, "POST", s.url+"/todos", `{"title":"write tests"}`, &t2); code != http.StatusCreated || t2.ID != 2 {
		t.Fatalf("POST /todos = %d %+v", code, t2)
	}
	var d todo
	if code := call(t, "POST", s.url+"/todos/1/done", "", &d); code != http.StatusOK || !d.Done || d.ID != 1 {
		t.Fatalf("POST /todos/1/done = %d %+v", code, d)
	}
	for _, bad := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/todos/99/done", "", http.StatusNotFound},
		{"POST", "/todos/abc/done", "", http.StatusBadRequest},
		{"POST", "/todos", `{"title":""}`, http.StatusBadRequest},
		{"POST", "/todos", `not json`, http.StatusBadRequest},
		{"DELETE", "/todos", "", http.StatusMethodNotAllowed},
	} {
		if code := call(t, bad.method, s.url+bad.path, bad.body, nil); code != bad.want {
			t.Errorf("%s %s %s = %d, want %d", bad.method, bad.path, bad.body, code, bad.want)
		}
	}
	var list []todo
	if code := call(t, "GET", s.url+"/todos", "", &list); code != http.StatusOK || len(list) != 2 || !list[0].Done || list[1].Done {
		t.Fatalf("GET /todos = %d %+v", code, list)
	}

	var st stats
	if code := call(t, "GET", s.url+"/stats", "", &st); code != http.StatusOK || st.Restored || st.Flushes != 0 || !st.LastFlush.IsZero() {
		t.Fatalf("GET /stats before any flush = %d %+v", code, st)
	}
	var fl struct {
		Uploaded bool  `json:"uploaded"`
		Bytes    int64 `json:"bytes"`
	}
	if code := call(t, "POST", s.url+"/flush", "", &fl); code != http.StatusOK || !fl.Uploaded || fl.Bytes == 0 {
		t.Fatalf("POST /flush = %d %+v", code, fl)
	}
	if code := call(t, "GET", s.url+"/stats", "", &st); code != http.StatusOK || st.Flushes != 1 || st.Uploads != 1 || st.BytesUploaded != fl.Bytes || st.LastFlush.IsZero() || st.LastError != "" {
		t.Fatalf("GET /stats after a flush = %d %+v", code, st)
	}
	var t3 todo
	if code := call(t, "POST", s.url+"/todos", `{"title":"after the flush"}`, &t3); code != http.StatusCreated {
		t.Fatalf("POST /todos = %d", code)
	}

	err, logs := s.stop()
	t.Logf("server log:\n%s", logs)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(logs, "msg=\"final flush done\" uploads=2") {
		t.Errorf("the log does not report the final upload")
	}

	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, done int
	if err := db.QueryRow("SELECT count(*), sum(done) FROM todos").Scan(&n, &done); err != nil {
		t.Fatal(err)
	}
	if n != 3 || done != 1 {
		t.Errorf("after shutdown the bucket holds %d to-dos, %d done; want 3, 1 done", n, done)
	}
}

// When the final flush fails, run says so: main then exits non-zero.
// Here another writer replaced the snapshot, which the flush must not
// overwrite.
func TestFailedFinalFlushIsAnError(t *testing.T) {
	dir := t.TempDir()
	// A working copy under the test's directory: a failed final flush
	// keeps it, and the test must not leave it behind.
	dsn := "file://" + dir + "/bucket/todos.db?flush_interval=0&local=" + filepath.Join(dir, "work", "todos.db")
	s := start(t, dsn)
	if code := call(t, "POST", s.url+"/todos", `{"title":"lost?"}`, nil); code != http.StatusCreated {
		t.Fatalf("POST /todos = %d", code)
	}
	b, err := bucket.NewDir(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	other := []byte("another writer's snapshot")
	if _, err := b.Upload(context.Background(), "todos.db", bytes.NewReader(other), int64(len(other)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}

	err, logs := s.stop()
	t.Logf("server log:\n%s", logs)
	if !errors.Is(err, snapshot.ErrConflict) {
		t.Fatalf("run = %v, want an error matching snapshot.ErrConflict", err)
	}
	if !strings.Contains(logs, `msg="final flush failed"`) {
		t.Errorf("the failure is not logged")
	}
}
