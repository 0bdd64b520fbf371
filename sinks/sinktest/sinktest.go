// Package sinktest is the conformance suite for sinks.Sink implementations,
// in the style of Go CDK's blob/drivertest: every sink runs the same
// contract tests from its own test file,
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, func(t *testing.T) sinks.Sink {
//			s, err := local.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite keeps to the key space every store shares: it never stores a key
// that is also a folder of other keys ("a" next to "a/b"), which object
// stores allow and file systems do not, and it keeps key segments below 255
// bytes.
package sinktest

import (
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

// Run runs the sinks contract as subtests of t, one fresh sink each.
//
// newSink is called once per subtest, with the subtest's t. It must return
// an empty sink isolated from every other sink it returns (a new temporary
// folder, a unique prefix of a test bucket) and register any cleanup with
// t.Cleanup. Subtests run one after the other; some use many goroutines on
// their sink. The optional abilities sinks.CreateOnly, sinks.Stater and
// sinks.Inventory are tested when the sink has them and their subtests are
// skipped otherwise.
func Run(t *testing.T, newSink func(t *testing.T) sinks.Sink) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSink(t)
			if s == nil {
				t.Fatal("newSink returned nil")
			}
			c.run(t, s)
		})
	}
}

// cases lists the contract, grouped by file.
var cases = []struct {
	name string
	run  func(*testing.T, sinks.Sink)
}{
	// basic.go
	{"RoundTrip", testRoundTrip},
	{"GetMissing", testGetMissing},
	{"PutReplaces", testPutReplaces},
	{"EmptyObject", testEmptyObject},
	{"Keys", testKeys},
	{"FolderIsNotObject", testFolderIsNotObject},
	{"InvalidKeys", testInvalidKeys},
	{"InvalidPrefixes", testInvalidPrefixes},

	// list.go
	{"ListByteOrder", testListByteOrder},
	{"ListPrefix", testListPrefix},
	{"ListPartialSegment", testListPartialSegment},
	{"ListStopsOnError", testListStopsOnError},
	{"ListMany", testListMany},

	// delete.go
	{"Delete", testDelete},
	{"DeleteBatch", testDeleteBatch},
	{"DeleteThenPut", testDeleteThenPut},

	// failure.go
	{"PutReaderError", testPutReaderError},
	{"PutCancelled", testPutCancelled},
	{"PutInvisibleUntilDone", testPutInvisibleUntilDone},

	// bulk.go
	{"LargeBody", testLargeBody},
	{"ConcurrentPuts", testConcurrentPuts},

	// optional.go
	{"PutIfAbsent", testPutIfAbsent},
	{"PutIfAbsentRace", testPutIfAbsentRace},
	{"PutIfAbsentFailed", testPutIfAbsentFailed},
	{"Stat", testStat},

	// inventory.go; RunInventory runs the cases named "Inventory…".
	{"InventoryWalk", testInventoryWalk},
	{"InventoryWalkStops", testInventoryWalkStops},
	{"InventoryDestroyAll", testInventoryDestroyAll},
	{"InventoryReplaced", testInventoryReplaced},
	{"InventoryDeleted", testInventoryDeleted},
	{"InventoryDestroyGone", testInventoryDestroyGone},
}
