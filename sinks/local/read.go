package local

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/hdc-export/hdc-export/sinks"
)

// Get opens the object at key. A missing key, or one naming a folder,
// returns an error wrapping sinks.ErrNotFound. The returned reader is an
// open file: it keeps reading the object it opened even if the key is
// replaced or deleted meanwhile.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("local: get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: get %q: %w", key, err)
	}
	root, err := s.open()
	if err != nil {
		return nil, err
	}
	defer root.Close()

	f, err := root.Open(osPath(key))
	if err != nil {
		return nil, readError("get", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("local: get %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("local: get %q: not a regular file: %w", key, sinks.ErrNotFound)
	}
	return f, nil
}

// Stat returns the size and modification time of the object at key, or an
// error wrapping sinks.ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (sinks.Object, error) {
	if err := checkKey(key); err != nil {
		return sinks.Object{}, fmt.Errorf("local: stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return sinks.Object{}, fmt.Errorf("local: stat %q: %w", key, err)
	}
	root, err := s.open()
	if err != nil {
		return sinks.Object{}, err
	}
	defer root.Close()

	fi, err := root.Stat(osPath(key))
	if err != nil {
		return sinks.Object{}, readError("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return sinks.Object{}, fmt.Errorf("local: stat %q: not a regular file: %w", key, sinks.ErrNotFound)
	}
	return sinks.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func readError(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("local: %s %q: %w", op, key, sinks.ErrNotFound)
	}
	return fmt.Errorf("local: %s %q: %w", op, key, classify(err))
}

// List calls fn for every object whose key starts with prefix, in ascending
// byte order of key. It walks only the folder named by the part of prefix
// up to its last slash, and only subfolders that can hold matching keys.
// Temporary files, symbolic links, and files whose names are not valid keys
// are skipped. Objects put or deleted during the walk may or may not be
// seen.
func (s *Store) List(ctx context.Context, prefix string, fn func(sinks.Object) error) error {
	if err := sinks.ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("local: list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: list %q: %w", prefix, err)
	}
	root, err := s.open()
	if err != nil {
		return err
	}
	defer root.Close()

	base := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = prefix[:i]
	}
	w := walker{ctx: ctx, fsys: root.FS(), prefix: prefix, fn: fn}
	return w.walkDir(base)
}

// walker lists objects depth-first in byte order of key.
//
// Reading a folder's entries sorted by name, with a slash appended to the
// names of subfolders, and descending into each subfolder at its place
// yields keys in byte order: every key below subfolder "d" starts with
// "d/", and a sibling's name contains no slash.
type walker struct {
	ctx    context.Context
	fsys   fs.FS
	prefix string
	fn     func(sinks.Object) error
}

func (w *walker) walkDir(dir string) error {
	entries, err := fs.ReadDir(w.fsys, dir)
	if err != nil {
		if isNotFound(err) {
			return nil // no such folder, or removed meanwhile: no objects
		}
		return fmt.Errorf("local: list %q: %w", w.prefix, classify(err))
	}
	type entry struct {
		sortName string
		fs.DirEntry
	}
	sorted := make([]entry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		sorted = append(sorted, entry{name, e})
	}
	slices.SortFunc(sorted, func(a, b entry) int { return strings.Compare(a.sortName, b.sortName) })

	for _, e := range sorted {
		if err := w.ctx.Err(); err != nil {
			return fmt.Errorf("local: list %q: %w", w.prefix, err)
		}
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		key := e.Name()
		if dir != "." {
			key = dir + "/" + key
		}
		switch {
		case e.IsDir():
			if !strings.HasPrefix(key+"/", w.prefix) && !strings.HasPrefix(w.prefix, key+"/") {
				continue
			}
			if err := w.walkDir(key); err != nil {
				return err // already wrapped, or fn's own
			}
		case e.Type().IsRegular():
			if !strings.HasPrefix(key, w.prefix) || sinks.ValidateKey(key) != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if isNotFound(err) {
					continue // deleted meanwhile
				}
				return fmt.Errorf("local: list %q: %w", w.prefix, classify(err))
			}
			if err := w.fn(sinks.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err // fn's error, returned as is
			}
		}
	}
	return nil
}
