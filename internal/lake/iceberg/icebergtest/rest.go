//go:build iceberg

// Package icebergtest serves a small Iceberg REST catalog for tests: the
// endpoints iceberg-go's REST client uses to create, load, list and commit
// tables, backed by iceberg-go's SQL catalog on a SQLite file. It checks
// the client's requests against the REST protocol (paths, JSON bodies,
// commit requirements); it is not a production catalog.
package icebergtest

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// REST is a running REST catalog.
type REST struct {
	*httptest.Server
	cat *sqlcat.Catalog
	mu  sync.Mutex // one request at a time, as SQLite wants it
	// Commits counts the table commits the catalog accepted.
	Commits int
	// Token, when set before the first request, is the bearer token every
	// request must carry; others are answered 401.
	Token string
}

// StartREST serves a REST catalog until the test ends. props are the file
// IO properties the catalog needs to write table metadata (s3.endpoint...).
func StartREST(t testing.TB, props iceberg.Properties) *REST {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "rest.db"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := sqlcat.NewCatalog("rest", db, sqlcat.SQLite, props)
	if err != nil {
		t.Fatal(err)
	}
	r := &REST{cat: cat}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() { r.Close(); cat.Close(); db.Close() })
	return r
}

type identifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

func (r *REST) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Token != "" && req.Header.Get("Authorization") != "Bearer "+r.Token {
		failWith(w, http.StatusUnauthorized, "NotAuthorizedException", "no valid bearer token")
		return
	}
	ctx := req.Context()
	parts := strings.Split(strings.Trim(strings.TrimPrefix(req.URL.Path, "/v1"), "/"), "/")
	switch {
	case req.Method == http.MethodGet && req.URL.Path == "/v1/config":
		reply(w, map[string]any{"defaults": map[string]string{}, "overrides": map[string]string{}})
	case req.Method == http.MethodPost && len(parts) == 1 && parts[0] == "namespaces":
		var body struct {
			Namespace []string           `json:"namespace"`
			Props     iceberg.Properties `json:"properties"`
		}
		if !decode(w, req, &body) {
			return
		}
		if err := r.cat.CreateNamespace(ctx, body.Namespace, body.Props); err != nil {
			fail(w, err)
			return
		}
		reply(w, map[string]any{"namespace": body.Namespace, "properties": body.Props})
	case len(parts) == 2 && parts[0] == "namespaces" && (req.Method == http.MethodHead || req.Method == http.MethodGet):
		ok, err := r.cat.CheckNamespaceExists(ctx, ns(parts[1]))
		if err == nil && !ok {
			err = catalog.ErrNoSuchNamespace
		}
		if err != nil {
			fail(w, err)
			return
		}
		if req.Method == http.MethodHead {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		reply(w, map[string]any{"namespace": ns(parts[1]), "properties": map[string]string{}})
	case len(parts) == 3 && parts[0] == "namespaces" && parts[2] == "tables" && req.Method == http.MethodGet:
		ids := []identifier{}
		for id, err := range r.cat.ListTables(ctx, ns(parts[1])) {
			if err != nil {
				fail(w, err)
				return
			}
			ids = append(ids, identifier{id[:len(id)-1], id[len(id)-1]})
		}
		reply(w, map[string]any{"identifiers": ids})
	case len(parts) == 3 && parts[0] == "namespaces" && parts[2] == "tables" && req.Method == http.MethodPost:
		var body struct {
			Name          string                 `json:"name"`
			Schema        *iceberg.Schema        `json:"schema"`
			Location      string                 `json:"location"`
			PartitionSpec *iceberg.PartitionSpec `json:"partition-spec"`
			Props         iceberg.Properties     `json:"properties"`
		}
		if !decode(w, req, &body) {
			return
		}
		opts := []catalog.CreateTableOpt{catalog.WithLocation(body.Location), catalog.WithProperties(body.Props)}
		if body.PartitionSpec != nil {
			opts = append(opts, catalog.WithPartitionSpec(body.PartitionSpec))
		}
		t, err := r.cat.CreateTable(ctx, append(ns(parts[1]), body.Name), body.Schema, opts...)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, map[string]any{"metadata-location": t.MetadataLocation(), "metadata": t.Metadata(), "config": map[string]string{}})
	case len(parts) == 4 && parts[0] == "namespaces" && parts[2] == "tables":
		id := append(ns(parts[1]), parts[3])
		switch req.Method {
		case http.MethodHead:
			ok, err := r.cat.CheckTableExists(ctx, id)
			if err == nil && !ok {
				err = catalog.ErrNoSuchTable
			}
			if err != nil {
				fail(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			t, err := r.cat.LoadTable(ctx, id)
			if err != nil {
				fail(w, err)
				return
			}
			reply(w, map[string]any{"metadata-location": t.MetadataLocation(), "metadata": t.Metadata(), "config": map[string]string{}})
		case http.MethodPost:
			var body struct {
				Requirements table.Requirements `json:"requirements"`
				Updates      table.Updates      `json:"updates"`
			}
			if !decode(w, req, &body) {
				return
			}
			meta, loc, err := r.cat.CommitTable(ctx, id, body.Requirements, body.Updates)
			if err != nil {
				fail(w, err)
				return
			}
			r.Commits++
			reply(w, map[string]any{"metadata-location": loc, "metadata": meta})
		case http.MethodDelete:
			if err := r.cat.DropTable(ctx, id); err != nil {
				fail(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	default:
		failWith(w, http.StatusNotFound, "NotFoundException", fmt.Sprintf("no route %s %s", req.Method, req.URL.Path))
	}
}

// ns is a path's namespace: levels joined by the unit separator.
func ns(s string) table.Identifier { return strings.Split(s, "\x1f") }

func decode(w http.ResponseWriter, req *http.Request, v any) bool {
	if err := json.NewDecoder(req.Body).Decode(v); err != nil {
		failWith(w, http.StatusBadRequest, "BadRequestException", err.Error())
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with the REST error the catalog error maps to.
func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, catalog.ErrNoSuchTable):
		failWith(w, http.StatusNotFound, "NoSuchTableException", err.Error())
	case errors.Is(err, catalog.ErrNoSuchNamespace):
		failWith(w, http.StatusNotFound, "NoSuchNamespaceException", err.Error())
	case errors.Is(err, catalog.ErrNamespaceAlreadyExists), errors.Is(err, catalog.ErrTableAlreadyExists):
		failWith(w, http.StatusConflict, "AlreadyExistsException", err.Error())
	case strings.Contains(err.Error(), "requirement failed"):
		failWith(w, http.StatusConflict, "CommitFailedException", err.Error())
	default:
		failWith(w, http.StatusInternalServerError, "ServerError", err.Error())
	}
}

func failWith(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}
