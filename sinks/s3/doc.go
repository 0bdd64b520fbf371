// Package s3 is the sinks.Sink for Amazon S3 and S3-compatible stores
// (MinIO, Ceph RGW, Cloudflare R2, …), built on aws-sdk-go-v2.
//
// A Store maps sink keys onto one bucket under an optional prefix: the sink
// key "a/b" is the object "<Prefix>/a/b" (or "a/b" with no prefix).
//
// Guarantees, beyond the sinks.Sink contract:
//
//   - Put streams: its memory is bounded by about PartSize × (3 +
//     Concurrency) whatever the object size (a 1 GiB Put with the defaults
//     peaks at about 85 MiB of process RSS). Bodies shorter than PartSize
//     go up in one PutObject with Content-MD5; longer ones go through the
//     SDK's transfer manager as a multipart upload with Content-MD5 on
//     every part, which is aborted on failure or cancellation so no partial
//     object ever becomes visible.
//   - Every Put checks the stored size with HeadObject against the bytes it
//     read, and records the SHA-256 of those bytes as user metadata
//     (x-amz-meta-sha256), which every S3-compatible store keeps.
//   - Errors are classified once, in mapErr: missing objects wrap
//     sinks.ErrNotFound, failed create-only puts sinks.ErrExists, and
//     failures a retry cannot fix (access denied, missing bucket, bad
//     credentials) sinks.ErrPermanent.
//   - Credentials come only from the SDK's standard chain (environment,
//     shared profile, web identity, SSO, instance role), never from Config,
//     and never appear in errors or in String.
//
// Store also implements sinks.CreateOnly (If-None-Match: *), sinks.Stater
// and sinks.Inventory: Walk lists every object, version, delete marker and
// incomplete upload under the prefix, whatever its key, and Destroy removes
// them for good, by version id and without ever bypassing object lock.
package s3
