#!/usr/bin/env bash
# install-minio.sh — make the MinIO server binary available for the S3 sink tests.
#
# Idempotent: if `minio` is already on PATH, in $(go env GOPATH)/bin, or named by
# $HDC_MINIO_BIN, it does nothing. Otherwise it builds the pinned version with
# `go install` (about 150 s and 150 MB on a fresh machine; the module proxy here
# serves only some versions, so the version is pinned and never @latest).
#
# Do not configure this script through MINIO_* variables: MinIO reads every
# MINIO_* variable as its own configuration.
set -euo pipefail

MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

if [[ -n "${HDC_MINIO_BIN:-}" && -x "${HDC_MINIO_BIN}" ]]; then
	echo "minio: using HDC_MINIO_BIN=${HDC_MINIO_BIN}"
	exit 0
fi

if path="$(command -v minio 2>/dev/null)"; then
	echo "minio: already installed at ${path}"
	exit 0
fi

gobin="$(go env GOBIN)"
if [[ -z "${gobin}" ]]; then
	gobin="$(go env GOPATH)/bin"
fi
if [[ -x "${gobin}/minio" ]]; then
	echo "minio: already installed at ${gobin}/minio"
	exit 0
fi

echo "minio: installing ${MINIO_MODULE}@${MINIO_VERSION} into ${gobin} (takes a few minutes once)..."
# `go install pkg@version` ignores the current module: the project's go.mod
# is neither consulted nor modified.
go install "${MINIO_MODULE}@${MINIO_VERSION}"
echo "minio: installed at ${gobin}/minio"
