package childproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// envVar names, in a child's environment, the registered function the
// child runs.
const envVar = "BUCKETSQLITE_CHILDPROC"

// Main runs the tests, or, in a process started by Command, the child
// function registered under the name Command was given, and exits with
// its code. Call it from TestMain, with every child the package's tests
// start. An unknown name exits with code 2 and a message on stderr.
func Main(m *testing.M, children map[string]func(args []string) int) {
	name, ok := os.LookupEnv(envVar)
	if !ok {
		os.Exit(m.Run())
	}
	child, ok := children[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "childproc: no child %q is registered\n", name)
		os.Exit(2)
	}
	os.Exit(child(os.Args[1:]))
}

// Command returns a command that runs this test binary as the child
// registered under name, with args. Its Env is the test's environment
// plus what selects the child: append to it, do not replace it.
func Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envVar+"="+name)
	setDeathSignal(cmd)
	return cmd
}

// Child is a running child process started by Start.
type Child struct {
	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	lines   []string
	next    int           // index in lines of what Next returns
	changed chan struct{} // closed and replaced when lines grows or output ends
	eof     bool          // the child's stdout is closed
	waited  chan struct{} // closed once the process is waited for
	err     error         // cmd.Wait's error, once waited
}

// Start starts cmd (made by Command) with pipes to its stdin and from its
// stdout, and collects its output lines as they come; its stderr goes to
// the test's, unless cmd sets it. It fails the test if the child cannot
// start, and kills the child when the test ends.
func Start(t testing.TB, cmd *exec.Cmd) *Child {
	t.Helper()
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	c := &Child{t: t, cmd: cmd, stdin: stdin, changed: make(chan struct{}), waited: make(chan struct{})}
	go c.read(stdout)
	t.Cleanup(c.Kill)
	return c
}

// read collects the child's output lines until its stdout closes, then
// waits for the process (stdout must be read to its end before Wait).
func (c *Child) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		c.mu.Lock()
		c.lines = append(c.lines, sc.Text())
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
	// Drain what a line too long for the scanner left, so that the child
	// is not blocked writing it.
	io.Copy(io.Discard, stdout)
	c.mu.Lock()
	c.eof = true
	close(c.changed)
	c.mu.Unlock()
	err := c.cmd.Wait()
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.waited)
}

// Send writes line and a newline to the child's stdin.
func (c *Child) Send(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

// CloseStdin closes the child's stdin: a child reading it sees the end.
func (c *Child) CloseStdin() error { return c.stdin.Close() }

// Next returns the child's next output line, waiting for it until ctx
// ends. Once the child's output has ended and every line was returned,
// it returns io.EOF.
func (c *Child) Next(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		switch {
		case c.next < len(c.lines):
			line := c.lines[c.next]
			c.next++
			c.mu.Unlock()
			return line, nil
		case c.eof:
			c.mu.Unlock()
			return "", io.EOF
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// Lines returns every line the child printed so far, including those
// Next returned. After Kill or Wait it is the child's whole output.
func (c *Child) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Wait closes the child's stdin, waits for it to exit and for its output
// to end, and returns how it exited (cmd.Wait's error).
func (c *Child) Wait() error {
	c.stdin.Close()
	<-c.waited
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Kill kills the child with SIGKILL (where there are signals), as a crash
// would, and waits until it is gone and its output collected. Killing a
// child that has exited does nothing.
func (c *Child) Kill() {
	c.cmd.Process.Kill()
	c.Wait()
}
