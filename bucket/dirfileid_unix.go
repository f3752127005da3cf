//go:build unix

package bucket

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// fileID returns the inode number of the open file f, whose FileInfo is fi.
func fileID(f *os.File, fi fs.FileInfo) (uint64, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no inode number in %T", f.Name(), fi.Sys())
	}
	return uint64(st.Ino), nil
}
