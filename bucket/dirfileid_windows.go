package bucket

import (
	"io/fs"
	"os"
	"syscall"
)

// fileID returns the file index of the open file f, NTFS's inode number,
// which a rename keeps.
func fileID(f *os.File, fi fs.FileInfo) (uint64, error) {
	var info syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &info); err != nil {
		return 0, err
	}
	return uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow), nil
}
