package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// runLines returns the "run N at TIME" lines of an output, newest first.
func runLines(out string) []string {
	return regexp.MustCompile(`(?m)^  run \d+ at \S+$`).FindAllString(out, -1)
}

// Three runs against versitygw, configured the three documented ways, with
// the credentials in the standard AWS environment variables. Each run
// restores the rows of the runs before it.
func TestRunAgainstS3CompatibleServer(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t, "")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	ctx := context.Background()

	runs := []struct {
		how  string
		args []string
		env  string // AWS_ENDPOINT_URL_S3
	}{
		{"flags", []string{"-bucket", name, "-endpoint", srv.Endpoint, "-path-style", "-v"}, ""},
		{"AWS_ENDPOINT_URL_S3", []string{"-bucket", name, "-path-style"}, srv.Endpoint},
		{"DSN", []string{"-dsn", "s3://" + name + "/examples/s3.db?path_style=true&endpoint=" + srv.Endpoint}, ""},
	}
	var outs []string
	for i, r := range runs {
		t.Setenv("AWS_ENDPOINT_URL_S3", r.env)
		var out bytes.Buffer
		if err := run(ctx, r.args, &out); err != nil {
			t.Fatalf("run %d (%s): %v\n%s", i+1, r.how, err, &out)
		}
		t.Logf("run %d (%s):\n%s", i+1, r.how, &out)
		lines := runLines(out.String())
		if len(lines) != i+1 {
			t.Fatalf("run %d (%s) lists %d runs, want %d", i+1, r.how, len(lines), i+1)
		}
		if i > 0 && lines[1] != runLines(outs[i-1])[0] {
			t.Errorf("run %d (%s) lists %q, want the previous run's %q", i+1, r.how, lines[1], runLines(outs[i-1])[0])
		}
		if !strings.Contains(out.String(), "flushed: uploaded=true") {
			t.Errorf("run %d (%s) did not upload", i+1, r.how)
		}
		outs = append(outs, out.String())
	}
	if !strings.Contains(outs[0], "bucketsqlite: flushed") {
		t.Errorf("-v did not log the driver's flush")
	}
	if strings.Contains(strings.Join(outs, ""), srv.SecretKey) {
		t.Errorf("the secret key was printed")
	}

	head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(name), Key: aws.String("examples/s3.db")})
	if err != nil {
		t.Fatalf("snapshot in the bucket: %v", err)
	}
	if aws.ToInt64(head.ContentLength) == 0 {
		t.Errorf("empty snapshot")
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{},                                       // no bucket
		{"-key", "x.db"},                         // still no bucket
		{"-dsn", "file:///tmp/x.db?region=auto"}, // region on a file bucket
		{"-dsn", "s3://AKID:secret@b/x.db"},      // credentials in the DSN
		{"-nosuchflag"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err == nil {
			t.Errorf("run %q succeeded", args)
		}
	}
}
