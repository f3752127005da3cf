// Package childproc lets a test binary run parts of itself as child
// processes: for tests that need a process to exit without cleaning up,
// to be killed with SIGKILL at a random moment, or to hold a lock or a
// database from outside the test's own process.
//
// # The child side
//
// A child is a function registered under a name in the package's
// TestMain, which hands control to Main:
//
//	func TestMain(m *testing.M) {
//		childproc.Main(m, map[string]func(args []string) int{
//			"writer": writerMain,
//		})
//	}
//
// Main runs the tests as usual, unless the process was started by Command
// as a child: then it runs the named function with the child's arguments
// and exits with the code it returns. A child talks to its parent on
// os.Stdin and os.Stdout, one line per message (fmt.Println writes a line
// in one write, so a SIGKILL never tears one); os.Stderr goes to the
// test's stderr.
//
// # The parent side
//
// Command makes the *exec.Cmd that runs a child; adjust it (Env, Dir) as
// with any command. Run it to completion with its CombinedOutput, or
// Start it to talk to it:
//
//	c := childproc.Start(t, childproc.Command("writer", dsn))
//	c.Send("insert a1")
//	line, err := c.Next(ctx) // the child's next line of output
//	c.Kill()                 // SIGKILL, as a crash would
//
// Start collects every line the child prints as it prints it, so a child
// never blocks on a full pipe while the test is busy elsewhere; Next
// hands them out in order and Lines returns them all. The child is
// killed when the test ends, if it still runs. On Linux the kernel kills
// it too if the test binary dies first (Pdeathsig), so a crashed or
// timed-out test leaves no process behind.
package childproc
