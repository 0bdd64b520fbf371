// avro-deflate.mjs works around a bug of the Avro reader icebird 0.3.1
// uses: it decodes the Avro "deflate" codec (raw RFC 1951 DEFLATE) with
// hyparquet-compressors 1.1.1's gunzip(data), which, given no output
// buffer, takes the spare capacity of its growing buffer for a further
// gzip member and decodes the stream again from byte 0 into that fixed
// buffer; a stored block then writes past its end and throws "RangeError:
// offset is out of bounds". Go's compress/flate, which iceberg-go's Avro
// writer (github.com/twmb/avro v1.8.0, ocf.DeflateCodec(-1)) uses for every
// manifest and manifest list, ends each stream with an empty stored block,
// so no iceberg-go table reads without this. (zlib's streams, e.g. Node's,
// end otherwise and decode fine.)
//
// This file is a Node module-resolution hook (see read.mjs, which registers
// it): only icebird's Avro reader, importing 'hyparquet-compressors', gets
// this module instead, whose gunzip inflates with Node's zlib. Everything
// else (Iceberg metadata, manifests, Avro decoding, Parquet) stays icebird's
// and hyparquet's own code.
import { inflateRawSync } from 'node:zlib'

/**
 * gunzip inflates one Avro deflate block (raw DEFLATE, no gzip header).
 * @param {Uint8Array} input
 * @returns {Uint8Array}
 */
export function gunzip(input) {
  return new Uint8Array(inflateRawSync(input))
}

/** Node's resolve hook: see the file comment. */
export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'hyparquet-compressors' && /\/icebird\/src\/avro\/[^/]+$/.test(context.parentURL ?? '')) {
    return { url: import.meta.url, shortCircuit: true }
  }
  return nextResolve(specifier, context)
}
