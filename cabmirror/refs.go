package cabmirror

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/schema"
)

// readCabRefs reads a partition's distinct cab references (sorted by
// CabIdHash) from its data files' columns cab_id_hash, application_id,
// cab_collection_time and cab_expiration_time, and counts the distinct
// values it rejects (which are never logged or stored). A row with a valid
// CabIdHash but a malformed ApplicationId is rejected too.
func (m *Mirror) readCabRefs(ctx context.Context, p *cabPartition) ([]cabRef, int, error) {
	view := p.view
	refs := map[string]cabRef{}
	bad := map[string]bool{} // hostile input: bounded, then counted without dedup
	extra := 0
	for _, f := range p.files {
		err := m.readRefColumns(ctx, f.Key, func(row schema.CabRef) {
			raw := strings.TrimSpace(row.CabIDHash)
			if raw == "" {
				return // a row without a cab
			}
			id, ok := lake.NormalizeCabID(raw)
			app := strings.TrimSpace(row.ApplicationID)
			if !ok || (app != "" && !validAppID(app)) {
				switch {
				case bad[raw]:
				case len(bad) < maxRejectedKept:
					bad[raw] = true
				default:
					extra++
				}
				return
			}
			if view != schema.IHVDriver.View {
				app = ""
			}
			if _, seen := refs[id]; !seen {
				refs[id] = cabRef{hash: id, raw: raw, app: app, view: view, dataset: p.dataset, date: p.date,
					collected: row.Collected, expires: row.Expires}
			}
		})
		if err != nil {
			return nil, 0, err
		}
	}
	out := make([]cabRef, 0, len(refs))
	for _, ref := range refs {
		out = append(out, ref)
	}
	slices.SortFunc(out, func(a, b cabRef) int { return strings.Compare(a.hash, b.hash) })
	return out, len(bad) + extra, nil
}

// maxRejectedKept bounds the rejected values a partition remembers to
// count them once each.
const maxRejectedKept = 4096

// validAppID accepts the documented ApplicationId shape (a numeric product
// id) with some slack: letters, digits, '-', '_' and '.', at most 64.
func validAppID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// readRefColumns calls fn for every row of the Parquet data file at key,
// reading only the columns a schema.CabRef needs.
func (m *Mirror) readRefColumns(ctx context.Context, key string, fn func(schema.CabRef)) error {
	ra, size, closeFn, err := m.openAt(ctx, key)
	if err != nil {
		return err
	}
	defer closeFn()
	return schema.ReadCabRefs(ctx, ra, size, fn)
}

// openAt opens an object of the sink for random access: in place if the
// reader Get returns is a file (the local sink's), otherwise (S3) through
// a spill copy in a folder from MkdirTemp, removed by the returned func (a
// crash leaves it to the owner of that folder's sweep).
func (m *Mirror) openAt(ctx context.Context, key string) (io.ReaderAt, int64, func(), error) {
	rc, err := m.Sink.Get(ctx, key)
	if err != nil {
		return nil, 0, nil, err
	}
	if f, ok := rc.(interface {
		io.ReaderAt
		Stat() (fs.FileInfo, error)
	}); ok {
		if st, err := f.Stat(); err == nil {
			return f, st.Size(), func() { rc.Close() }, nil
		}
	}
	defer rc.Close()
	dir, err := m.mkdirTemp()
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	f, err := os.CreateTemp(dir, "part-*.parquet")
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("create spill file: %w", err)
	}
	n, err := io.Copy(f, rc)
	if err != nil {
		f.Close()
		cleanup()
		return nil, 0, nil, fmt.Errorf("read %s: %w", key, err)
	}
	return f, n, func() { f.Close(); cleanup() }, nil
}
