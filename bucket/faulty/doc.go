// Package faulty wraps a bucket.Bucket and makes chosen calls fail, stall,
// tear or lie, so that code built on buckets can be tested against the
// failures real storage has: requests that error, time out, hang, lose
// their response after the write landed, and backends that store half an
// object or claim a write they never made.
//
// It is how bucketsqlite proves its promise that an acknowledged flush is
// never lost and a good snapshot is never replaced by a bad one, and you
// can use it the same way in your own tests.
//
// # Rules
//
// Wrap any bucket, then add rules. A rule names an operation (Stat,
// Download, Upload, Copy, Delete, List, or Any), which call of it to hit
// (1 is the next one; Every is all of them) and the Fault to apply:
//
//	b := faulty.New(bucket.NewMemory())
//	r := b.Inject(faulty.Upload, 1, faulty.Fail(nil))      // the next upload fails
//	b.Inject(faulty.Download, faulty.Every, faulty.Hang()) // every download hangs until ctx ends
//	...
//	if r.Fired() == 0 {
//		t.Fatal("the fault never happened: the test proved nothing")
//	}
//	b.Clear() // the faults stop; b forwards every call again
//
// Rules are tried in the order they were added; the first that applies
// wins. InjectFunc decides per call, for random faults from a seeded
// source. Calls counts the calls of each operation, faulted or not, and
// Inner gives the wrapped bucket for inspecting what really got stored.
//
// # Faults
//
//   - Fail(err) returns err (ErrInjected if nil) without touching the
//     inner bucket. Fail(bucket.ErrPrecondition) or
//     Fail(bucket.ErrNotFound) imitate those outcomes exactly.
//   - FailAfter(err) lets the call through, then reports err: the write
//     happened but the caller was told it failed, as when a response is
//     lost. A client that assumes "error means nothing changed" trips
//     over its own write on the next conditional request.
//   - Delay(d) waits d first (honouring ctx); Hang() waits for ctx to end.
//     Together they show whether every call is bounded by a deadline.
//   - Truncate(n) stores (Upload) or delivers (Download) only a prefix
//     and reports an error; TruncateSilently(n) does the same and reports
//     success. A bucket.Bucket promises atomic writes: these faults break
//     that promise on purpose, to see what a client detects.
//   - Lie() reports success and does nothing. An Upload that lies returns
//     a made-up ETag; only asking the bucket afterwards reveals it.
//   - IgnoreConditions() makes Upload and Copy drop their conditions, as
//     S3-compatible servers without conditional writes (s3rver) do: a
//     write that should fail with bucket.ErrPrecondition overwrites
//     instead. Only probing the bucket reveals it (see
//     snapshot.ProbeConditions).
//
// Errors made up by faults match ErrInjected and are *bucket.Error values
// naming the operation and key, like every backend's errors.
//
// # What a client can detect
//
// Fail, Hang and Truncate are visible in the call's result. FailAfter,
// Lie and TruncateSilently are not: a client finds out only by checking
// what the bucket holds (a Stat after an upload, a hash of a download
// compared with one recorded at upload time). The snapshot package does
// both; its documentation says what each check catches and costs.
package faulty
