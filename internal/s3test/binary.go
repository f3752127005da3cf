package s3test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/buckethead/bucketsqlite/internal/fsutil"
)

// Version is the versitygw release Binary installs when none is found.
const Version = "v1.8.0"

// installPackage is what `go install` builds.
const installPackage = "github.com/versity/versitygw/cmd/versitygw@" + Version

// Binary returns the path of the versitygw executable: the environment
// variable VERSITYGW if set, else versitygw on PATH, else
// $(go env GOPATH)/bin/versitygw, installing it there first with go install
// if it is missing. Concurrent callers in different processes install it
// once: the install runs under a file lock.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("versitygw is not on PATH and there is no go command to install it: %w", err)
	}
	gopath, err := goEnv(ctx, goBin, "GOPATH")
	if err != nil {
		return "", err
	}
	// GOPATH may be a list; go install uses the first entry.
	gopath = filepath.SplitList(gopath)[0]
	bin := filepath.Join(gopath, "bin")
	exe := filepath.Join(bin, "versitygw")
	if checkExecutable(exe) == nil {
		return exe, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("install versitygw: %w", err)
	}
	// The lock dies with its holder, so a crashed installer never wedges
	// the next one.
	lock, err := fsutil.Lock(ctx, filepath.Join(bin, ".versitygw-install.lock"))
	if err != nil {
		return "", fmt.Errorf("install versitygw: %w", err)
	}
	defer lock.Unlock()
	// Another process may have installed it while we waited for the lock.
	if checkExecutable(exe) == nil {
		return exe, nil
	}
	cmd := exec.CommandContext(ctx, goBin, "install", installPackage)
	cmd.Dir = os.TempDir() // outside any module: @version ignores go.mod anyway
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", installPackage, err, tail(out, 4096))
	}
	if err := checkExecutable(exe); err != nil {
		return "", fmt.Errorf("go install %s succeeded but: %w", installPackage, err)
	}
	return exe, nil
}

func goEnv(ctx context.Context, goBin, name string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin, "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", fmt.Errorf("go env %s is empty", name)
	}
	return v, nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// tail returns at most the last n bytes of b, as a string.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
