package fsutil

import (
	"errors"
	"os"
	"runtime"
)

// SyncDir fsyncs the directory dir, so that a rename or a new file in it
// survives a crash. File systems and platforms that cannot sync a
// directory (Windows, some network file systems) are not an error.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, os.ErrInvalid) {
		return nil
	}
	return err
}
