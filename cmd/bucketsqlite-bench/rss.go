package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// childEnv carries a child's spec: a peak-RSS phase runs in a process of
// its own, so that nothing the parent did before shows in its figures.
const childEnv = "BUCKETSQLITE_BENCH_CHILD"

// childSpec is what a child measures, and where.
type childSpec struct {
	Phase     string // put, get, flush, restore
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	Key       string
	File      string // put: the file to upload
	Dir       string // where downloads and working copies go
}

// childResult is a child's answer, as JSON on its stdout.
type childResult struct {
	Base int64 // resident set when the phase started, bytes
	Peak int64 // peak resident set during the phase, bytes
}

// rssRows: the peak-RSS raise of a flush and of a restore of the largest
// database, each in a child process, next to a PutObject and a GetObject
// of the same object.
func (b *bench) rssRows(ctx context.Context) ([]row, error) {
	size := b.rssSize()
	seed := b.seeds[size]
	flushKey, err := b.newKey(ctx, size, "rss")
	if err != nil {
		return nil, err
	}
	spec := childSpec{
		Endpoint: b.srv.Endpoint, Region: b.srv.Region,
		AccessKey: b.srv.AccessKey, SecretKey: b.srv.SecretKey,
		Bucket: b.bucket, Dir: b.dir,
	}
	measure := func(phase, key string) (int64, error) {
		s := spec
		s.Phase, s.Key, s.File = phase, key, seed.path
		res, err := runChild(ctx, s)
		return res.Peak - res.Base, err
	}
	var rows []row
	for _, p := range []struct{ phase, key, base, baseName string }{
		{"flush", flushKey, "put", "PutObject of the file"},
		{"restore", seed.key, "get", "GetObject into a file"},
	} {
		raise, err := measure(p.phase, p.key)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", p.phase, err)
		}
		base, err := measure(p.base, seed.key)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", p.base, err)
		}
		rows = append(rows, row{
			name:     fmt.Sprintf("peak RSS raise, %s %s", p.phase, formatSize(size)),
			value:    formatMiB(raise),
			baseName: p.baseName,
			base:     formatMiB(base),
			target:   "≤ " + formatMiB(targetRSSRaise),
			result:   verdict(raise <= targetRSSRaise),
		})
	}
	return rows, nil
}

// runChild runs this executable as a child measuring spec.
func runChild(ctx context.Context, spec childSpec) (childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return childResult{}, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return childResult{}, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return childResult{}, fmt.Errorf("child: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res childResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return childResult{}, fmt.Errorf("child: bad answer %q: %w", stdout.String(), err)
	}
	return res, nil
}

// childMain is main in a child: it runs one phase and prints a childResult.
func childMain(specJSON string, stdout, stderr io.Writer) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(stderr, "bad spec:", err)
		return 2
	}
	res, err := child(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	json.NewEncoder(stdout).Encode(res)
	return 0
}

func child(ctx context.Context, spec childSpec) (childResult, error) {
	client := s3.New(s3.Options{
		Region:                     spec.Region,
		BaseEndpoint:               aws.String(spec.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(spec.AccessKey, spec.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	bk, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: spec.Bucket, Client: client})
	if err != nil {
		return childResult{}, err
	}
	b := &bench{client: client, bucket: spec.Bucket, bk: bk}
	dir, err := os.MkdirTemp(spec.Dir, "rss-*")
	if err != nil {
		return childResult{}, err
	}
	defer os.RemoveAll(dir)
	var phase func() error
	switch spec.Phase {
	case "put":
		phase = func() error { return b.plainPut(ctx, spec.File, "rss-put.db") }
	case "get":
		phase = func() error { return b.plainGet(ctx, spec.Key, filepath.Join(dir, "get.db")) }
	case "restore":
		phase = func() error {
			_, err := snapshot.RestoreFile(ctx, bk, spec.Key, filepath.Join(dir, "restored.db"), snapshot.RestoreOptions{})
			return err
		}
	case "flush":
		cfg := driver.NewConfig()
		cfg.Bucket, cfg.Key = bucket.URL{Scheme: "s3", Bucket: spec.Bucket}, spec.Key
		cfg.FlushInterval, cfg.KeepPrevious = 0, false
		c, err := driver.NewConnector(cfg, driver.WithS3Client(client))
		if err != nil {
			return childResult{}, err
		}
		db := sql.OpenDB(c)
		defer db.Close()
		if _, err := db.ExecContext(ctx, "CREATE TABLE bench_writes(id INTEGER PRIMARY KEY, v BLOB)"); err != nil {
			return childResult{}, err
		}
		phase = func() error {
			res, err := driver.Flush(ctx, db)
			if err == nil && !res.Uploaded {
				err = errors.New("flush of a changed database uploaded nothing")
			}
			return err
		}
	default:
		return childResult{}, fmt.Errorf("unknown phase %q", spec.Phase)
	}
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return childResult{}, fmt.Errorf("reset peak RSS: %w", err)
	}
	base, _, err := memStatus()
	if err != nil {
		return childResult{}, err
	}
	if err := phase(); err != nil {
		return childResult{}, err
	}
	_, peak, err := memStatus()
	return childResult{Base: base, Peak: peak}, err
}

// memStatus returns VmRSS and VmHWM from /proc/self/status, in bytes.
func memStatus() (rss, hwm int64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/self/status: %s: %w", k, err)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, errors.New("/proc/self/status: no VmRSS or VmHWM")
	}
	return rss, hwm, sc.Err()
}
