package sinktest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

// putAll stores every body, from several goroutines.
func putAll(t *testing.T, s sinks.Sink, bodies map[string][]byte) {
	t.Helper()
	keys := make([]string, 0, len(bodies))
	for k := range bodies {
		keys = append(keys, k)
	}
	forEach(t, len(keys), 32, func(i int) error {
		return s.Put(t.Context(), keys[i], bytes.NewReader(bodies[keys[i]]))
	})
}

func testListByteOrder(t *testing.T, s sinks.Sink) {
	// Walking folders in name order gives "a/c/d" < "a/c-d" < "a/c.d";
	// byte order of full keys is '-' (0x2d) < '.' (0x2e) < '/' (0x2f).
	keys := []string{
		"a/b", "a/c/d", "a/c-d", "a/c.d", "a/c0",
		"a-b", "a.b", "a0", "aa/x",
		"Q", "R/x", "b", "z", "~", // no keys differing only in case
		"é", "ü/x", "日本", " space",
	}
	bodies := make(map[string][]byte, len(keys))
	for i, k := range keys {
		bodies[k] = genBytes(uint64(i+1), i)
	}
	putAll(t, s, bodies)
	wantList(t, s, "", sizes(bodies))
	wantList(t, s, "a/c", map[string]int64{"a/c/d": 1, "a/c-d": 2, "a/c.d": 3, "a/c0": 4})
}

func testListPrefix(t *testing.T, s sinks.Sink) {
	bodies := map[string][]byte{
		"a/x":   []byte("1"),
		"a/y/z": []byte("22"),
		"ab/x":  []byte("333"),
		"abc":   []byte("4444"),
		"b/x":   []byte("55555"),
	}
	putAll(t, s, bodies)
	all := sizes(bodies)
	pick := func(keys ...string) map[string]int64 {
		m := make(map[string]int64, len(keys))
		for _, k := range keys {
			m[k] = all[k]
		}
		return m
	}
	for _, c := range []struct {
		prefix string
		want   map[string]int64
	}{
		{"", all},
		{"a/", pick("a/x", "a/y/z")}, // not "ab/x"
		{"a", pick("a/x", "a/y/z", "ab/x", "abc")},
		{"ab", pick("ab/x", "abc")},
		{"ab/", pick("ab/x")},
		{"a/y", pick("a/y/z")},
		{"a/y/", pick("a/y/z")},
		{"a/x", pick("a/x")}, // a whole key
		{"b/x", pick("b/x")},
		{"c", nil},
		{"zz/top/", nil},
		{"a/x/", nil}, // below an object
	} {
		wantList(t, s, c.prefix, c.want)
	}
}

func testListPartialSegment(t *testing.T, s sinks.Sink) {
	bodies := map[string][]byte{
		"ds/date=2026-11-20/part-00000.parquet": []byte("20a"),
		"ds/date=2026-11-20/part-00001.parquet": []byte("20b"),
		"ds/date=2026-11-21/part-00000.parquet": []byte("21"),
		"ds/date=2026-12-01/part-00000.parquet": []byte("1201"),
		"ds/dataset.json":                       []byte("{}"),
		"dt/date=2026-11-20/part-00000.parquet": []byte("other"),
	}
	putAll(t, s, bodies)
	all := sizes(bodies)
	pick := func(keys ...string) map[string]int64 {
		m := make(map[string]int64, len(keys))
		for _, k := range keys {
			m[k] = all[k]
		}
		return m
	}
	nov := pick("ds/date=2026-11-20/part-00000.parquet", "ds/date=2026-11-20/part-00001.parquet",
		"ds/date=2026-11-21/part-00000.parquet")
	wantList(t, s, "ds/date=2026-11", nov)
	wantList(t, s, "ds/date=2026-11-2", nov)
	wantList(t, s, "ds/date=2026-11-20/part-", pick("ds/date=2026-11-20/part-00000.parquet",
		"ds/date=2026-11-20/part-00001.parquet"))
	wantList(t, s, "ds/date=2026-11-20/part-00001", pick("ds/date=2026-11-20/part-00001.parquet"))
	wantList(t, s, "ds/dat", pick("ds/date=2026-11-20/part-00000.parquet", "ds/date=2026-11-20/part-00001.parquet",
		"ds/date=2026-11-21/part-00000.parquet", "ds/date=2026-12-01/part-00000.parquet", "ds/dataset.json"))
	wantList(t, s, "d", all)
}

func testListStopsOnError(t *testing.T, s sinks.Sink) {
	bodies := make(map[string][]byte)
	for i := range 5 {
		bodies[fmt.Sprintf("stop/%d", i)] = []byte("x")
	}
	putAll(t, s, bodies)
	errStop := errors.New("stop here")
	var seen []string
	err := s.List(t.Context(), "", func(o sinks.Object) error {
		seen = append(seen, o.Key)
		if len(seen) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("List = %v, want the error fn returned", err)
	}
	if len(seen) != 2 || seen[0] != "stop/0" || seen[1] != "stop/1" {
		t.Errorf("fn saw %q, want [stop/0 stop/1] and then no more calls", seen)
	}
}

// testListMany lists more objects than one page of S3's ListObjectsV2.
func testListMany(t *testing.T, s sinks.Sink) {
	const n = 1200
	bodies := make(map[string][]byte, n+2)
	for i := range n {
		bodies[fmt.Sprintf("many/obj-%05d", i)] = []byte(fmt.Sprint(i))
	}
	bodies["many-sibling"] = []byte("s")
	bodies["man"] = []byte("m")
	putAll(t, s, bodies)

	all := sizes(bodies)
	wantList(t, s, "", all)
	delete(all, "many-sibling")
	delete(all, "man")
	wantList(t, s, "many/", all)
	wantList(t, s, "many/obj-0119", map[string]int64{
		"many/obj-01190": 4, "many/obj-01191": 4, "many/obj-01192": 4, "many/obj-01193": 4, "many/obj-01194": 4,
		"many/obj-01195": 4, "many/obj-01196": 4, "many/obj-01197": 4, "many/obj-01198": 4, "many/obj-01199": 4,
	})
}
