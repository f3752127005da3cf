// Package s3test runs a real S3 server for tests and benchmarks: the
// versitygw gateway (Apache-2.0) over a temporary directory, listening on
// 127.0.0.1 only, with random credentials per server.
//
// A test starts its own server and gets a bucket and a configured client:
//
//	srv := s3test.Start(t) // stopped by t.Cleanup
//	name := srv.NewBucket(t, "")
//	client := srv.Client()
//
// The versitygw binary is looked up in the environment variable VERSITYGW
// (a path), then as "versitygw" on PATH, then in $(go env GOPATH)/bin. If
// none is found it is installed there with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// under a file lock, so that test binaries running in parallel install it
// once. When no server can be found, installed or started, Start skips the
// test with the reason, or fails it when the environment variable CI is
// true: a CI run must not pass by skipping every S3 test.
//
// Programs that are not tests (a benchmark command) use [StartServer] and
// [Server.Close].
package s3test
