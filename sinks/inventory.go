package sinks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Inventory is the optional ability that retention is built on: to see
// everything the store holds under the sink's root, and to destroy any of
// it for good.
//
// List shows the current objects whose keys are valid sink keys, which is
// what a reader of the lake needs. A copy of personal data can also hide
// where List does not look: under a key the sink would never write (a
// backslash, a control character, bytes that are not UTF-8, a trailing
// slash), in a noncurrent version or behind a delete marker of a versioned
// bucket, in the parts of an incomplete multipart upload, or behind a link
// in a folder. Walk shows all of those, and Destroy removes them so that
// no store-side copy remains.
type Inventory interface {
	// Settings reads the store's settings that decide whether a delete
	// destroys: versioning and object lock. They can change at any time,
	// so callers read them on every purge.
	Settings(ctx context.Context) (Settings, error)

	// Walk calls fn for every item under the sink's root, whatever its
	// key: every object; on a versioned store (versioning enabled or
	// suspended) every version and delete marker; every incomplete
	// multipart upload; every folder entry that is not a folder, links
	// included and never followed. The order is the store's. If fn returns
	// an error, Walk stops and returns it.
	Walk(ctx context.Context, fn func(Item) error) error

	// Destroy removes items that Walk returned, for good: a version or a
	// delete marker by its version id, an upload by aborting it, a folder
	// entry by unlinking it (a link, never its target). An item that is
	// already gone is not a failure. One item that cannot be destroyed
	// does not stop the others: each is returned as a Failure, whose Err
	// wraps ErrLocked (as a *LockedError) when object lock protects the
	// item. The error is for the call as a whole (a cancelled context, a
	// store that cannot be reached); the failures list may then be
	// incomplete. Destroy does not order deletions: a caller that must not
	// let an older version become current removes versions in one call
	// and their delete marker in a later one.
	Destroy(ctx context.Context, items []Item) ([]Failure, error)

	// LockOf reports the object lock on an item: its retention mode and
	// retain-until date, and whether a legal hold is on. It returns the
	// zero Lock on a store without object lock or for an item without one.
	LockOf(ctx context.Context, it Item) (Lock, error)
}

// Versioning states, as S3 names them. The zero value means versioning
// was never enabled: a delete destroys the object.
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// Settings are a store's settings that decide whether a delete destroys.
type Settings struct {
	// Versioning is "", VersioningEnabled or VersioningSuspended. On a
	// store that has been versioned, a plain delete only adds a delete
	// marker: the data stays readable by version id.
	Versioning string
	// ObjectLock is set when the store can lock objects against deletion
	// (an S3 bucket created with object lock).
	ObjectLock bool
	// DefaultRetention is the lock that the store puts on every new object
	// (zero when none): its mode and period.
	DefaultRetention Retention
}

// Retention is a default object-lock retention.
type Retention struct {
	Mode string // "GOVERNANCE" or "COMPLIANCE"; "" for none
	Days int    // the period in days (a period given in years is converted, 365 days a year)
}

// ItemKind says what an Item is.
type ItemKind uint8

const (
	// ItemObject is an object: on a versioned store, its current version.
	ItemObject ItemKind = iota
	// ItemVersion is a noncurrent version of an object.
	ItemVersion
	// ItemDeleteMarker is a delete marker, current (Latest) or not.
	ItemDeleteMarker
	// ItemUpload is an incomplete multipart upload and its parts.
	ItemUpload
	// ItemLink is a symbolic link in a folder; its target is not looked at.
	ItemLink
	// ItemOther is a folder entry that is neither a file, a folder nor a
	// link (a named pipe, a socket, a device).
	ItemOther
)

var itemKinds = [...]string{"object", "version", "delete marker", "upload", "link", "other"}

func (k ItemKind) String() string {
	if int(k) < len(itemKinds) {
		return itemKinds[k]
	}
	return fmt.Sprintf("ItemKind(%d)", k)
}

// Item is one thing a store holds, as Inventory.Walk found it.
type Item struct {
	// Key is relative to the sink's root, as stored: it may be empty, end
	// in a slash, or hold bytes that ValidateKey rejects.
	Key  string
	Kind ItemKind
	// VersionID names a version or delete marker on a versioned store
	// (S3's "null" for one written while versioning was off or
	// suspended); "" on an unversioned store.
	VersionID string
	// UploadID names an incomplete multipart upload.
	UploadID string
	// Latest is set for a key's current version or delete marker.
	Latest bool
	Size   int64
	// ModTime is when the item was written, or the upload initiated.
	ModTime time.Time
}

// Failure is an item that Destroy could not destroy, and why.
type Failure struct {
	Item Item
	Err  error
}

// Lock is the object lock on an item.
type Lock struct {
	Mode      string    // "GOVERNANCE" or "COMPLIANCE"; "" for none
	Until     time.Time // retain-until date; zero for none
	LegalHold bool
}

// Holds reports whether the lock forbids deleting the item at now.
func (l Lock) Holds(now time.Time) bool { return l.LegalHold || l.Until.After(now) }

// ErrLocked: object lock (a retention period or a legal hold) forbids
// destroying the item.
var ErrLocked = errors.New("object is locked")

// LockedError is a Destroy failure caused by object lock. Its Lock is the
// item's, as far as the store would tell (Until is zero if it would not).
type LockedError struct {
	Lock Lock
	Err  error // the store's own answer
}

func (e *LockedError) Error() string {
	switch {
	case e.Lock.LegalHold:
		return "object is locked: legal hold"
	case !e.Lock.Until.IsZero():
		return fmt.Sprintf("object is locked (%s) until %s", e.Lock.Mode, e.Lock.Until.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("object is locked: %v", e.Err)
}

func (e *LockedError) Unwrap() []error { return []error{ErrLocked, e.Err} }
