//go:build unix

package main

import (
	"bufio"
	"database/sql"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The built server, stopped by SIGINT as Ctrl-C would: it exits 0 after
// the final flush, which put the to-do in the bucket.
func TestBinaryFlushesOnSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example: slow")
	}
	bin := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Dir = work
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	urls := make(chan string, 1)
	logDone := make(chan struct{})
	var logs strings.Builder
	go func() {
		defer close(logDone)
		defer close(urls)
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				urls <- m[1]
				sent = true
			}
		}
	}()
	url, ok := <-urls
	if !ok {
		<-logDone
		t.Fatalf("the server did not start:\n%s", logs.String())
	}
	if code := call(t, "POST", url+"/todos", `{"title":"survive Ctrl-C"}`, nil); code != http.StatusCreated {
		t.Fatalf("POST /todos = %d", code)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-logDone
	err = cmd.Wait()
	exited = true
	t.Logf("server log:\n%s", logs.String())
	if err != nil {
		t.Fatalf("server exited with %v", err)
	}

	db, err := sql.Open("bucketsqlite", "file://"+work+"/data/bucket/todos.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var title string
	if err := db.QueryRow("SELECT title FROM todos").Scan(&title); err != nil || title != "survive Ctrl-C" {
		t.Fatalf("the bucket holds %q, %v; want the to-do", title, err)
	}
}
