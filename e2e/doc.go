// Package e2e holds the end-to-end acceptance tests of hdc-export. They
// build the binary from the repository root, run it against the Dev Center
// emulator, and check the Parquet lake with DuckDB against a ground truth
// computed by an independent API client (package apiclient). The S3 tests
// start a MinIO server of their own and use the AWS CLI as the independent
// S3 client; without minio or aws they skip, and fail when CI=true. The
// module is separate so that DuckDB's cgo bindings never reach the main
// module.
package e2e
