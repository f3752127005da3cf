package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// TempFile is a file written under a temporary name in the directory of
// its destination, which takes the destination's name only when
// complete. Make one with CreateTemp; write to it through the embedded
// *os.File.
type TempFile struct {
	*os.File
	dst     string
	renamed bool
}

// CreateTemp creates an empty temporary file, mode 0600, in the directory
// of dst, which Commit or Rename will rename to dst. pattern names it as
// os.CreateTemp does (a "*" is replaced by a random string); an empty
// pattern means "." + the base name of dst + ".tmp-*". The error is
// os.CreateTemp's, so errors.Is(err, fs.ErrNotExist) tells a missing
// directory.
func CreateTemp(dst, pattern string) (*TempFile, error) {
	if pattern == "" {
		pattern = "." + filepath.Base(dst) + ".tmp-*"
	}
	f, err := os.CreateTemp(filepath.Dir(dst), pattern)
	if err != nil {
		return nil, err
	}
	// os.CreateTemp asks for 0600 already; say so explicitly, so that the
	// promise does not rest on a detail of its implementation.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &TempFile{File: f, dst: dst}, nil
}

// Commit publishes the file: it fsyncs and closes it, renames it over the
// destination and fsyncs the destination's directory. Once Commit returns
// nil the destination holds the whole file, also after a crash. On an
// error before the rename the destination is unchanged; call Discard to
// remove the temporary file.
func (t *TempFile) Commit() error {
	err := t.Sync()
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = t.Rename()
	}
	if err == nil {
		err = SyncDir(filepath.Dir(t.dst))
	}
	return err
}

// Rename renames the temporary file over the destination, and nothing
// else: it is for a caller that has fsynced and closed the file itself,
// and fsyncs the directory afterwards (SyncDir), because it has other
// steps to take in between. After Rename, Discard does nothing.
func (t *TempFile) Rename() error {
	if err := os.Rename(t.Name(), t.dst); err != nil {
		return err
	}
	t.renamed = true
	return nil
}

// Discard closes the file and removes it unless it was renamed. It is
// safe to call more than once and after Commit: defer it right after
// CreateTemp.
func (t *TempFile) Discard() {
	t.Close()
	if !t.renamed {
		os.Remove(t.Name())
	}
}

// WriteFileAtomic replaces the file at path with data, atomically and
// durably: no reader ever sees a partial file, and once it returns nil the
// file survives a crash. It writes a temporary file in path's directory
// (see CreateTemp), sets perm on it, and commits it. On failure the file
// at path is unchanged and no temporary file is left behind. The error
// names path.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	t, err := CreateTemp(path, "")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer t.Discard()
	_, err = t.Write(data)
	if err == nil && perm.Perm() != 0o600 {
		err = t.Chmod(perm.Perm())
	}
	if err == nil {
		err = t.Commit()
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
