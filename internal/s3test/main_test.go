package s3test

import (
	"context"
	"fmt"
	"testing"

	"github.com/buckethead/bucketsqlite/internal/childproc"
)

// TestMain lets the test binary run the children of the tests that need
// a process to die under them.
func TestMain(m *testing.M) {
	childproc.Main(m, children)
}

// children are the child processes the package's tests start.
var children = map[string]func([]string) int{
	"orphan-server": orphanServer,
}

// orphanServer, run by TestServerDiesWithParent in a child process,
// starts a server and exits without stopping it.
func orphanServer([]string) int {
	srv, err := StartServer(context.Background())
	if err != nil {
		fmt.Println("ERR", err)
		return 3
	}
	fmt.Println("PID", srv.cmd.Process.Pid)
	return 0 // no Close: the death signal must clean up
}
