package s3test

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/internal/childproc"
)

// TestServerDiesWithParent starts a child test process that starts a
// server and exits without stopping it: the server must not outlive it.
func TestServerDiesWithParent(t *testing.T) {
	if _, err := Binary(context.Background()); err != nil {
		t.Skipf("no versitygw: %v", err)
	}
	cmd := childproc.Command("orphan-server")
	// The child's server directory goes under our TempDir, removed when
	// this test ends although the child never calls Close.
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var pid int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PID "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid <= 0 {
		t.Fatalf("child printed no server pid:\n%s", out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("server pid %d outlived its parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a running process (not a zombie awaiting
// its reaper).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
