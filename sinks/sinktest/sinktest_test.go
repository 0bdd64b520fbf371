package sinktest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/sinktest"
)

// TestMemSink runs the suite on a minimal in-memory sink, which checks that
// the suite asks for the contract and nothing particular to one store.
func TestMemSink(t *testing.T) {
	sinktest.Run(t, func(*testing.T) sinks.Sink { return &memSink{objs: map[string]memObject{}} })
}

// TestMemSinkPlain runs the suite on a sink without optional abilities.
func TestMemSinkPlain(t *testing.T) {
	sinktest.Run(t, func(*testing.T) sinks.Sink {
		return struct{ sinks.Sink }{&memSink{objs: map[string]memObject{}}}
	})
}

type memObject struct {
	body    []byte
	modTime time.Time
}

type memSink struct {
	mu   sync.Mutex
	objs map[string]memObject
}

// read buffers r, checking ctx between reads.
func read(ctx context.Context, r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := r.Read(chunk)
		buf.Write(chunk[:n])
		if err == io.EOF {
			return buf.Bytes(), ctx.Err()
		}
		if err != nil {
			return nil, err
		}
	}
}

func (m *memSink) Put(ctx context.Context, key string, r io.Reader) error {
	if err := sinks.ValidateKey(key); err != nil {
		return err
	}
	b, err := read(ctx, r)
	if err != nil {
		return fmt.Errorf("mem: put %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = memObject{b, time.Now()}
	return nil
}

func (m *memSink) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := sinks.ValidateKey(key); err != nil {
		return err
	}
	b, err := read(ctx, r)
	if err != nil {
		return fmt.Errorf("mem: put %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; ok {
		return fmt.Errorf("mem: put %q: %w", key, sinks.ErrExists)
	}
	m.objs[key] = memObject{b, time.Now()}
	return nil
}

func (m *memSink) Get(_ context.Context, key string) (io.ReadCloser, error) {
	if err := sinks.ValidateKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("mem: %q: %w", key, sinks.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(o.body)), nil // bodies are never modified
}

func (m *memSink) Stat(_ context.Context, key string) (sinks.Object, error) {
	if err := sinks.ValidateKey(key); err != nil {
		return sinks.Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return sinks.Object{}, fmt.Errorf("mem: %q: %w", key, sinks.ErrNotFound)
	}
	return sinks.Object{Key: key, Size: int64(len(o.body)), ModTime: o.modTime}, nil
}

func (m *memSink) List(_ context.Context, prefix string, fn func(sinks.Object) error) error {
	if err := sinks.ValidatePrefix(prefix); err != nil {
		return err
	}
	m.mu.Lock()
	var objs []sinks.Object
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			objs = append(objs, sinks.Object{Key: k, Size: int64(len(o.body)), ModTime: o.modTime})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(objs, func(a, b sinks.Object) int { return strings.Compare(a.Key, b.Key) })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (m *memSink) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		if err := sinks.ValidateKey(k); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.objs, k)
	}
	return nil
}

// The memSink keeps no versions and locks nothing: its inventory is its
// objects.

func (m *memSink) Settings(context.Context) (sinks.Settings, error) { return sinks.Settings{}, nil }

func (m *memSink) LockOf(context.Context, sinks.Item) (sinks.Lock, error) { return sinks.Lock{}, nil }

func (m *memSink) Walk(ctx context.Context, fn func(sinks.Item) error) error {
	return m.List(ctx, "", func(o sinks.Object) error {
		return fn(sinks.Item{Key: o.Key, Kind: sinks.ItemObject, Latest: true, Size: o.Size, ModTime: o.ModTime})
	})
}

func (m *memSink) Destroy(_ context.Context, items []sinks.Item) ([]sinks.Failure, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var failures []sinks.Failure
	for _, it := range items {
		if it.Kind != sinks.ItemObject {
			failures = append(failures, sinks.Failure{Item: it, Err: fmt.Errorf("mem: no %s", it.Kind)})
			continue
		}
		delete(m.objs, it.Key)
	}
	return failures, nil
}

var _ sinks.Inventory = (*memSink)(nil)
