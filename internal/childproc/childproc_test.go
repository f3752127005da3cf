package childproc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/internal/childproc"
)

func TestMain(m *testing.M) {
	childproc.Main(m, map[string]func([]string) int{
		"echo": echoMain,
		"exit": exitMain,
		"hang": hangMain,
	})
}

// echoMain answers each line of stdin with it in upper case, after
// printing its arguments.
func echoMain(args []string) int {
	fmt.Println("args", strings.Join(args, ","))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(strings.ToUpper(sc.Text()))
	}
	return 0
}

// exitMain prints a line and exits with the code in its argument.
func exitMain(args []string) int {
	fmt.Println("exiting")
	code, _ := strconv.Atoi(args[0])
	return code
}

// hangMain says it is ready and blocks until killed.
func hangMain([]string) int {
	fmt.Println("ready")
	select {}
}

// bound ends a wait that would otherwise hang the test; no assertion is
// made about how long anything takes.
func bound(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestStartSendNext(t *testing.T) {
	c := childproc.Start(t, childproc.Command("echo", "a", "b"))
	ctx := bound(t)
	for _, want := range []string{"args a,b"} {
		if got, err := c.Next(ctx); err != nil || got != want {
			t.Fatalf("Next = %q, %v; want %q", got, err, want)
		}
	}
	for _, line := range []string{"one", "two"} {
		if err := c.Send(line); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Next(ctx); err != nil || got != strings.ToUpper(line) {
			t.Fatalf("Next = %q, %v; want %q", got, err, strings.ToUpper(line))
		}
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := c.Next(ctx); err != io.EOF {
		t.Fatalf("Next after the end = %v; want io.EOF", err)
	}
	if got := strings.Join(c.Lines(), "|"); got != "args a,b|ONE|TWO" {
		t.Fatalf("Lines = %q", got)
	}
}

func TestKill(t *testing.T) {
	c := childproc.Start(t, childproc.Command("hang"))
	if got, err := c.Next(bound(t)); err != nil || got != "ready" {
		t.Fatalf("Next = %q, %v", got, err)
	}
	c.Kill()
	var ee *exec.ExitError
	if err := c.Wait(); !errors.As(err, &ee) || ee.Success() {
		t.Fatalf("Wait after Kill = %v; want an unsuccessful exit", err)
	}
	c.Kill() // a second Kill does nothing
}

func TestCommandExitCode(t *testing.T) {
	out, err := childproc.Command("exit", "3").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || string(out) != "exiting\n" {
		t.Fatalf("exit 3: %q, %v", out, err)
	}
	out, err = childproc.Command("no-such-child").CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no-such-child") {
		t.Fatalf("unknown child: %q, %v", out, err)
	}
}
