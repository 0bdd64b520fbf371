// Package local implements sinks.Sink on a directory of the local file
// system.
//
// An object is a regular file; its key, with slashes turned into the
// platform's separator, is its path below the root. Folders are created on
// demand and removed again when their last object is deleted.
//
// Writes are atomic and durable in the style of restic's local backend: the
// body is streamed into a temporary file next to its destination (named
// ".tmp-…", never listed), synced, renamed over the destination, and the
// folder is synced. A crash leaves at worst a stale temporary file, which
// RemoveStaleTemp cleans up.
//
// Every access goes through an os.Root, so neither a hostile key (which
// sinks.ValidateKey rejects anyway) nor a symbolic link planted inside the
// root can reach a file outside it.
//
// Limitations of a file system compared with an object store: a key cannot
// be both an object and a folder of other objects ("a" and "a/b"), such a
// put fails with an error wrapping sinks.ErrPermanent; a key segment may not
// exceed the file system's name limit (usually 255 bytes, reported as
// sinks.ErrInvalidKey); and key segments starting with ".tmp-" are reserved
// for temporary files (sinks.ErrInvalidKey).
package local

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hdc-export/hdc-export/sinks"
)

const (
	// tempPrefix starts the name of every temporary file.
	tempPrefix = ".tmp-"
	dirPerm    = 0o750
	filePerm   = 0o640
)

// Store is a sink on a local directory. It is safe for concurrent use, also
// by several processes sharing the directory.
type Store struct {
	dir string // absolute, cleaned
}

var (
	_ sinks.Sink       = (*Store)(nil)
	_ sinks.CreateOnly = (*Store)(nil)
	_ sinks.Stater     = (*Store)(nil)
)

// New returns a store rooted at the directory root, an absolute or relative
// path, creating the directory (mode 0o750) if it is missing.
func New(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("local: empty root directory")
	}
	dir, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("local: root %q: %w", root, err)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("local: create root: %w", classify(err))
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("local: open root: %w", classify(err))
	}
	if err := r.Close(); err != nil {
		return nil, fmt.Errorf("local: open root: %w", err)
	}
	return &Store{dir: dir}, nil
}

// String returns the root as a file URL, e.g. "file:///srv/lake".
func (s *Store) String() string {
	p := filepath.ToSlash(s.dir)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows drive letter
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}

// open returns a handle confining all access to the root. It is opened per
// operation so that a Store holds no file descriptor and needs no Close.
func (s *Store) open() (*os.Root, error) {
	r, err := os.OpenRoot(s.dir)
	if err != nil {
		// A vanished root is not "object not found": never map it to
		// ErrNotFound, and a retry will not bring it back.
		return nil, fmt.Errorf("local: open root %s: %w: %w", s.dir, sinks.ErrPermanent, err)
	}
	return r, nil
}

// checkKey validates key for this store: sinks.ValidateKey plus the
// reserved temporary-file prefix.
func checkKey(key string) error {
	if err := sinks.ValidateKey(key); err != nil {
		return err
	}
	if isReserved(key) {
		return fmt.Errorf("%w: segment starting with %q is reserved", sinks.ErrInvalidKey, tempPrefix)
	}
	return nil
}

// isReserved reports whether a segment of key starts with tempPrefix.
func isReserved(key string) bool {
	return strings.HasPrefix(key, tempPrefix) || strings.Contains(key, "/"+tempPrefix)
}

// osPath converts a validated key or folder to a root-relative path.
func osPath(key string) string { return filepath.FromSlash(key) }

// isNotFound reports whether err means the path does not exist, including a
// path component being a file rather than a folder.
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// isConflict reports whether err comes from a key colliding with a folder
// or a folder path colliding with an object.
func isConflict(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR)
}

// classify adds the sinks sentinel matching a file-system error, if any.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.ENAMETOOLONG):
		return fmt.Errorf("%w: %w", sinks.ErrInvalidKey, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: %w", sinks.ErrPermanent, err)
	}
	return err
}
