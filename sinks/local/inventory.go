package local

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/hdc-export/hdc-export/sinks"
)

var _ sinks.Inventory = (*Store)(nil)

// Settings returns the zero Settings: a folder keeps no versions and locks
// nothing, so removing a file destroys it.
func (s *Store) Settings(ctx context.Context) (sinks.Settings, error) {
	if err := ctx.Err(); err != nil {
		return sinks.Settings{}, fmt.Errorf("local: settings: %w", err)
	}
	return sinks.Settings{}, nil
}

// LockOf returns the zero Lock: a folder has no object lock.
func (s *Store) LockOf(ctx context.Context, _ sinks.Item) (sinks.Lock, error) {
	if err := ctx.Err(); err != nil {
		return sinks.Lock{}, fmt.Errorf("local: lock: %w", err)
	}
	return sinks.Lock{}, nil
}

// Walk calls fn for every entry below the root that is not a folder,
// descending into folders, with its slash path below the root as the key,
// whatever its name: names List skips (not UTF-8, with backslashes or
// control characters, temporary ".tmp-…" files) are reported too. A
// regular file is a sinks.ItemObject, Latest since a folder keeps no other
// version; a symbolic link is a sinks.ItemLink and is never followed, also
// not when it points at a folder; anything else (a named pipe, a socket, a
// device) is a sinks.ItemOther. Size and ModTime are the entry's own
// (Lstat). Each folder's entries come in byte order of name. Entries
// removed during the walk may or may not be reported.
func (s *Store) Walk(ctx context.Context, fn func(sinks.Item) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: walk: %w", err)
	}
	root, err := s.open()
	if err != nil {
		return err
	}
	defer root.Close()
	w := inventoryWalker{ctx: ctx, root: root, fn: fn}
	return w.walkDir(".", "")
}

// inventoryWalker walks every folder entry below the root.
type inventoryWalker struct {
	ctx  context.Context
	root *os.Root
	fn   func(sinks.Item) error
}

// walkDir reports the entries of the folder at the root-relative path dir,
// whose key prefix is prefix ("" for the root, else the folder's key and
// a slash), and descends into its subfolders.
//
// It reads the folder with os.File.ReadDir, not through root.FS, which
// refuses names that are not UTF-8.
func (w *inventoryWalker) walkDir(dir, prefix string) error {
	entries, err := w.readDir(dir)
	if err != nil {
		if isNotFound(err) {
			return nil // removed meanwhile, or replaced by a file
		}
		return fmt.Errorf("local: walk %q: %w", prefix, classify(err))
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			return fmt.Errorf("local: walk: %w", err)
		}
		key := prefix + e.Name()
		if e.IsDir() {
			if err := w.walkDir(osPath(key), key+"/"); err != nil {
				return err // already wrapped, or fn's own
			}
			continue
		}
		fi, err := e.Info() // Lstat: a link's own size and time
		if err != nil {
			if isNotFound(err) {
				continue // removed meanwhile
			}
			return fmt.Errorf("local: walk %q: %w", key, classify(err))
		}
		kind := sinks.ItemOther
		switch {
		case fi.Mode().IsRegular():
			kind = sinks.ItemObject
		case fi.Mode()&fs.ModeSymlink != 0:
			kind = sinks.ItemLink
		}
		it := sinks.Item{Key: key, Kind: kind, Latest: kind == sinks.ItemObject, Size: fi.Size(), ModTime: fi.ModTime()}
		if err := w.fn(it); err != nil {
			return err // fn's error, returned as is
		}
	}
	return nil
}

// readDir returns the entries of the folder at the root-relative path dir,
// refusing to read through a symbolic link: os.Root follows links that
// stay inside the root, so a folder swapped for a link between the parent's
// listing and this call would be walked twice. The folder opened must be
// the one Lstat sees.
func (w *inventoryWalker) readDir(dir string) ([]fs.DirEntry, error) {
	f, err := w.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if dir != "." {
		opened, err := f.Stat()
		if err != nil {
			return nil, err
		}
		fi, err := w.root.Lstat(dir)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() || !os.SameFile(opened, fi) {
			return nil, fs.ErrNotExist // no longer the folder that was listed
		}
	}
	return f.ReadDir(-1)
}

// Destroy unlinks the folder entries that Walk reported: a file, a named
// pipe, or a symbolic link itself (never its target). Folders left empty
// are removed, up to but not including the root, as Delete does. An entry
// that is already gone is not a failure. Each item that cannot be
// destroyed is returned as a sinks.Failure: a key that is empty, absolute,
// or has an empty, "." or ".." segment (it could name something outside
// the root, which os.Root refuses anyway); a key that names a folder; an
// item kind a folder cannot hold (versions, delete markers, uploads); or
// the file system's error. The error is for the call as a whole: a
// cancelled context or a root that cannot be opened.
func (s *Store) Destroy(ctx context.Context, items []sinks.Item) ([]sinks.Failure, error) {
	if len(items) == 0 {
		return nil, nil
	}
	root, err := s.open()
	if err != nil {
		return nil, err
	}
	defer root.Close()

	var failures []sinks.Failure
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return failures, fmt.Errorf("local: destroy: %w", err)
		}
		if err := destroyEntry(root, it); err != nil {
			failures = append(failures, sinks.Failure{Item: it, Err: err})
		}
	}
	return failures, nil
}

// destroyEntry unlinks one item's folder entry.
func destroyEntry(root *os.Root, it sinks.Item) error {
	switch it.Kind {
	case sinks.ItemObject, sinks.ItemLink, sinks.ItemOther:
	default:
		return fmt.Errorf("local: destroy %q: a folder holds no %s: %w", it.Key, it.Kind, sinks.ErrInvalidKey)
	}
	if err := checkEntryPath(it.Key); err != nil {
		return fmt.Errorf("local: destroy %q: %w", it.Key, err)
	}
	if _, err := removeFile(root, it.Key); err != nil {
		return fmt.Errorf("local: destroy %q: %w", it.Key, classify(err))
	}
	return nil
}

// checkEntryPath accepts any slash path that stays below the root: unlike
// checkKey it allows names that are not valid keys, since Walk reports
// every name the folder holds.
func checkEntryPath(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.ContainsRune(key, 0) {
		return fmt.Errorf("%w: not a relative path below the root", sinks.ErrInvalidKey)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "", ".", "..":
			return fmt.Errorf("%w: empty, '.' or '..' segment", sinks.ErrInvalidKey)
		}
	}
	return nil
}
