package faulty_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
)

// Fail the second upload, then see that the first one's object is intact.
func Example() {
	ctx := context.Background()
	b := faulty.New(bucket.NewMemory())
	rule := b.Inject(faulty.Upload, 2, faulty.Fail(nil))

	put := func(s string) error {
		_, err := b.Upload(ctx, "k", strings.NewReader(s), int64(len(s)), bucket.WriteOptions{})
		return err
	}
	fmt.Println("first:", put("one"))
	err := put("two")
	fmt.Println("second injected:", errors.Is(err, faulty.ErrInjected), "fired:", rule.Fired())
	fmt.Println("third:", put("three"))
	fmt.Println("uploads:", b.Calls(faulty.Upload))
	// Output:
	// first: <nil>
	// second injected: true fired: 1
	// third: <nil>
	// uploads: 3
}

// An upload that lies is only caught by asking the bucket.
func ExampleLie() {
	ctx := context.Background()
	b := faulty.New(bucket.NewMemory())
	b.Inject(faulty.Upload, faulty.Every, faulty.Lie())

	a, err := b.Upload(ctx, "k", strings.NewReader("data"), 4, bucket.WriteOptions{})
	fmt.Println("upload:", err, a.Size)
	_, err = b.Stat(ctx, "k")
	fmt.Println("stat finds it:", !errors.Is(err, bucket.ErrNotFound))
	// Output:
	// upload: <nil> 4
	// stat finds it: false
}

// Hang shows whether a caller bounds its calls with a deadline.
func ExampleHang() {
	b := faulty.New(bucket.NewMemory())
	b.Inject(faulty.Any, faulty.Every, faulty.Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := b.Stat(ctx, "k")
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output:
	// true
}
