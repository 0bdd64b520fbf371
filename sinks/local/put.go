package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/hdc-export/hdc-export/sinks"
)

// copyBufSize is the chunk size of a put; ctx is checked between chunks.
const copyBufSize = 256 << 10

// Put stores r under key, atomically replacing any existing object. The
// body goes to a temporary file in the destination folder, which is synced,
// renamed over the destination, and the folder is synced. On failure or
// cancellation the temporary file is removed and the old object remains.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("local: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: put %q: %w", key, err)
	}
	root, err := s.open()
	if err != nil {
		return err
	}
	defer root.Close()

	tmp, newDirs, err := writeTemp(ctx, root, key, r)
	if err != nil {
		return writeError("put", key, err)
	}
	if err := root.Rename(osPath(tmp), osPath(key)); err != nil {
		_ = root.Remove(osPath(tmp))
		if newDirs {
			pruneEmptyDirs(root, path.Dir(key))
		}
		if fi, lerr := root.Lstat(osPath(key)); lerr == nil && fi.IsDir() {
			return conflictError("put", key, err)
		}
		return writeError("put", key, err)
	}
	if err := syncDirs(root, path.Dir(key), newDirs); err != nil {
		return fmt.Errorf("local: put %q: %w", key, err)
	}
	return nil
}

// PutIfAbsent stores r under key only if no object exists there; otherwise
// it returns an error wrapping sinks.ErrExists. The body is written to a
// temporary file first and then hard-linked to the key, which fails
// atomically if the key is taken, so concurrent callers (also in other
// processes) have exactly one winner. The file system must support hard
// links.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("local: put-if-absent: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: put-if-absent %q: %w", key, err)
	}
	root, err := s.open()
	if err != nil {
		return err
	}
	defer root.Close()

	// Fast path: do not stream a body that cannot win.
	if fi, err := root.Lstat(osPath(key)); err == nil {
		return existsError(key, fi)
	}
	tmp, newDirs, err := writeTemp(ctx, root, key, r)
	if err != nil {
		return writeError("put-if-absent", key, err)
	}
	linkErr := root.Link(osPath(tmp), osPath(key))
	rmErr := root.Remove(osPath(tmp))
	if linkErr != nil {
		if newDirs {
			pruneEmptyDirs(root, path.Dir(key))
		}
		if errors.Is(linkErr, fs.ErrExist) {
			if fi, err := root.Lstat(osPath(key)); err == nil {
				return existsError(key, fi)
			}
		}
		return writeError("put-if-absent", key, linkErr)
	}
	if rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
		return fmt.Errorf("local: put-if-absent %q: remove temporary file: %w", key, rmErr)
	}
	if err := syncDirs(root, path.Dir(key), newDirs); err != nil {
		return fmt.Errorf("local: put-if-absent %q: %w", key, err)
	}
	return nil
}

// existsError reports a taken key; a folder in the way is a conflict, not
// an existing object.
func existsError(key string, fi fs.FileInfo) error {
	if fi.IsDir() {
		return conflictError("put-if-absent", key, fs.ErrExist)
	}
	return fmt.Errorf("local: put-if-absent %q: %w", key, sinks.ErrExists)
}

// writeError wraps a failed write of key. A key whose folder path runs into
// an object, or which names a folder, cannot be written until that object
// or folder is gone, so the error is permanent.
func writeError(op, key string, err error) error {
	if isConflict(err) {
		return conflictError(op, key, err)
	}
	return fmt.Errorf("local: %s %q: %w", op, key, classify(err))
}

func conflictError(op, key string, err error) error {
	return fmt.Errorf("local: %s %q: key collides with an object or folder of the same name: %w: %w",
		op, key, sinks.ErrPermanent, err)
}

// writeTemp streams r into a new, synced and closed temporary file in the
// folder of key and returns its root-relative slash path. newDirs reports
// whether the folder had to be created. On error nothing is left behind,
// not even the folders it created.
func writeTemp(ctx context.Context, root *os.Root, key string, r io.Reader) (tmp string, newDirs bool, err error) {
	f, tmp, newDirs, err := createTemp(root, path.Dir(key))
	if err != nil {
		return "", false, err
	}
	buf := make([]byte, copyBufSize)
	// The struct hides (*os.File).ReadFrom so that the buffer size and the
	// ctx checks of ctxReader apply.
	_, err = io.CopyBuffer(struct{ io.Writer }{f}, &ctxReader{ctx: ctx, r: r}, buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err() // cancelled after the last chunk: do not publish
	}
	if err != nil {
		_ = root.Remove(osPath(tmp))
		if newDirs {
			pruneEmptyDirs(root, path.Dir(key))
		}
		return "", false, err
	}
	return tmp, newDirs, nil
}

// createTemp creates the folder dir if needed and an exclusive temporary
// file in it. A concurrent Delete may remove a folder it just emptied
// between the two steps; the attempt is then repeated.
func createTemp(root *os.Root, dir string) (f *os.File, tmp string, newDirs bool, err error) {
	const attempts = 5
	for i := 0; ; i++ {
		if dir != "." {
			if _, err := root.Lstat(osPath(dir)); err != nil {
				if err := root.MkdirAll(osPath(dir), dirPerm); err != nil {
					// Concurrent Puts into new folders race: a failed one
					// prunes a parent MkdirAll has just made (ENOENT), or
					// another makes a folder first (EEXIST). Look again.
					if i+1 < attempts && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)) {
						continue
					}
					return nil, "", false, err
				}
				newDirs = true
			}
		}
		tmp = path.Join(dir, tempPrefix+rand.Text())
		f, err = root.OpenFile(osPath(tmp), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if err == nil {
			return f, tmp, newDirs, nil
		}
		if i+1 == attempts || !(errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)) {
			return nil, "", false, err
		}
	}
}

// syncDirs syncs the folder dir so that a rename or link in it is durable
// and, if the folder was newly created, every folder above it up to the
// root so that the new folders are durable too.
func syncDirs(root *os.Root, dir string, newDirs bool) error {
	for {
		if err := syncDir(root, dir); err != nil {
			return err
		}
		if !newDirs || dir == "." {
			return nil
		}
		dir = path.Dir(dir)
	}
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(osPath(dir))
	if err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync folders; that is not a write failure.
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

// ctxReader fails with the context's error once ctx is done, checked before
// every read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
