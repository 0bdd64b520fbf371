package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// Delete removes the objects at keys; a missing key, or one naming a
// folder, is not an error. Folders left empty are removed, up to but not
// including the root, so purged partitions leave no empty folders behind.
// All keys are validated before anything is removed. A failure to remove
// one object does not stop the others; the failures are joined.
// Deletions are not synced to disk.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := checkKey(key); err != nil {
			return fmt.Errorf("local: delete: %w", err)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	root, err := s.open()
	if err != nil {
		return err
	}
	defer root.Close()

	var errs []error
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("local: delete: %w", err))...)
		}
		if _, err := removeFile(root, key); err != nil && !errors.Is(err, errFolder) {
			errs = append(errs, fmt.Errorf("local: delete %q: %w", key, classify(err)))
		}
	}
	return errors.Join(errs...)
}

// errFolder is removeFile's answer for a path that names a folder.
var errFolder = errors.New("names a folder, not a file")

// removeFile removes the file at the slash path name (or the link, or
// other entry that is not a folder), and then the folders it leaves empty.
// It reports whether it removed the file. A missing name is not an error;
// a folder is left alone and reported as errFolder.
func removeFile(root *os.Root, name string) (bool, error) {
	fi, err := root.Lstat(osPath(name))
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, err
	}
	if fi.IsDir() {
		return false, errFolder
	}
	if err := root.Remove(osPath(name)); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, err
	}
	pruneEmptyDirs(root, path.Dir(name))
	return true, nil
}

// pruneEmptyDirs removes dir and its parents, below the root, while they
// are empty. It is best effort: it stops at the first folder that is not
// empty or cannot be removed. A Put racing with it recreates the folder.
func pruneEmptyDirs(root *os.Root, dir string) {
	for ; dir != "." && dir != "/"; dir = path.Dir(dir) {
		// Lstat guards against removing a symbolic link in place of a
		// folder (Remove does not follow the final link).
		fi, err := root.Lstat(osPath(dir))
		if err != nil || !fi.IsDir() {
			return
		}
		if err := root.Remove(osPath(dir)); err != nil {
			return
		}
	}
}

// RemoveStaleTemp removes the temporary files (".tmp-…") last modified
// more than olderThan ago, which a crashed or killed Put leaves behind, and
// the folders this empties. Choose olderThan well above the duration of the
// slowest Put, since a live Put's temporary file looks the same. It returns
// the number of files removed.
func (s *Store) RemoveStaleTemp(olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	return s.RemoveTemp(func(_ string, modTime time.Time) bool { return modTime.Before(cutoff) })
}

// RemoveTemp removes the temporary files (".tmp-…") for which remove,
// given the file's slash path below the root and its modification time,
// returns true, and the folders this empties. It returns the number of
// files removed. A Put killed before its rename leaves such a file behind,
// and a live Put's file looks the same: remove decides, by age, or because
// the caller knows that nobody else writes there (a lease). Removing a
// live Put's file makes that Put fail; it never publishes a partial object.
func (s *Store) RemoveTemp(remove func(name string, modTime time.Time) bool) (int, error) {
	root, err := s.open()
	if err != nil {
		return 0, err
	}
	defer root.Close()

	var stale []string
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotFound(err) {
				return nil // removed meanwhile
			}
			return err
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return err
		}
		if remove(name, fi.ModTime()) {
			stale = append(stale, name)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("local: remove stale temporary files: %w", classify(err))
	}

	n := 0
	var errs []error
	for _, name := range stale {
		removed, err := removeFile(root, name)
		if err != nil && !errors.Is(err, errFolder) {
			errs = append(errs, fmt.Errorf("local: remove stale temporary file %q: %w", name, classify(err)))
		}
		if removed {
			n++
		}
	}
	return n, errors.Join(errs...)
}
