// Package sinks defines the storage contract the lake is written through.
//
// A Sink is a flat key space of immutable-until-replaced objects: a folder on
// disk (sinks/local), an S3-compatible bucket (sinks/s3), or anything else
// that passes the conformance suite in sinks/sinktest. Keys are
// slash-separated relative paths such as
// "ihv_driver/date=2026-11-20/part-00000.parquet".
//
// Optional abilities are one-method interfaces detected with a type
// assertion (see CreateOnly and Stater), in the style of rclone's features
// and Go CDK's drivers.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors every implementation maps its native errors to, wrapped
// with %w so callers test them with errors.Is.
var (
	// ErrNotFound: the key holds no object.
	ErrNotFound = errors.New("object not found")
	// ErrExists: a create-only put found the key already taken.
	ErrExists = errors.New("object already exists")
	// ErrInvalidKey: the key is not a valid relative object key.
	ErrInvalidKey = errors.New("invalid object key")
	// ErrPermanent marks failures that a retry cannot fix (access denied,
	// missing bucket). Implementations wrap it so that retry loops stop:
	// it says so through a Permanent method, which retry policies ask of
	// the errors they see (internal/retry), without importing sinks.
	ErrPermanent error = permanentError{}
)

type permanentError struct{}

func (permanentError) Error() string { return "permanent storage error" }

// Permanent reports that a retry cannot fix the failure.
func (permanentError) Permanent() bool { return true }

// Object describes a stored object.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Sink is the storage contract. All methods are safe for concurrent use.
// Keys are case-sensitive; a key must not also be the folder of other keys
// ("a" beside "a/b"), which file systems cannot hold; segments starting
// ".tmp-" are reserved for implementations' temporary files.
type Sink interface {
	// Put stores the whole of r under key, replacing any existing object
	// atomically: a reader sees the old object or the new one, never a
	// partial one. If Put fails or ctx is cancelled, the old object (or
	// absence) remains, or, when the store acted but its answer was lost
	// and could not be confirmed, the complete new one: never a partial
	// one. Put is idempotent. Put reads r to EOF at most once
	// unless r is an io.Seeker, in which case a retry may rewind it.
	Put(ctx context.Context, key string, r io.Reader) error

	// Get opens the object at key. A missing key returns an error wrapping
	// ErrNotFound. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// List calls fn for every object whose key starts with prefix, in
	// ascending byte order of key. An empty prefix lists everything. If fn
	// returns an error, List stops and returns it.
	List(ctx context.Context, prefix string, fn func(Object) error) error

	// Delete removes the objects at keys. A missing key is not an error.
	// Implementations batch where the store allows it.
	Delete(ctx context.Context, keys ...string) error
}

// CreateOnly is the optional ability to store an object only if the key is
// free, atomically (a lease is built on it).
type CreateOnly interface {
	// PutIfAbsent stores r under key if no object exists there; otherwise
	// it returns an error wrapping ErrExists and leaves the object as it is.
	PutIfAbsent(ctx context.Context, key string, r io.Reader) error
}

// Stater is the optional ability to read an object's metadata without its
// body.
type Stater interface {
	// Stat returns the object at key, or an error wrapping ErrNotFound.
	Stat(ctx context.Context, key string) (Object, error)
}

// MaxKeyLen bounds key length (S3's limit is 1024 bytes).
const MaxKeyLen = 1024

// ValidateKey reports whether key is a valid object key: non-empty, at most
// MaxKeyLen bytes, relative, slash-separated, with no empty, "." or ".."
// segment, no backslash and no control character. Every sink calls it
// before touching storage, so a hostile key never becomes a path.
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: length %d", ErrInvalidKey, len(key))
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidKey)
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("%w: control character or backslash", ErrInvalidKey)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "", ".", "..":
			return fmt.Errorf("%w: empty, '.' or '..' segment", ErrInvalidKey)
		}
	}
	return nil
}

// ValidatePrefix reports whether prefix is usable with List: empty, or a
// key prefix whose complete segments (those followed by a slash) are valid
// and whose characters are all allowed in keys.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLen {
		return fmt.Errorf("%w: prefix length %d", ErrInvalidKey, len(prefix))
	}
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if err := ValidateKey(prefix[:i]); err != nil {
			return err
		}
	}
	return ValidateKey(strings.ReplaceAll(prefix, "/", "_") + "_")
}
