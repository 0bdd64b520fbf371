// read.mjs reads one Iceberg table of an hdc-export lake with icebird, an
// Apache Iceberg reader in JavaScript (on hyparquet) that shares no code
// with iceberg-go, and prints what it read as JSON on stdout:
//
//   {"columns": [...], "rows": [[...], ...]}
//
// columns are the current schema's column names, in schema order; rows are
// every row of the current snapshot, each an array in column order, sorted.
// Values are normalised so that another reader can produce the same
// arrays: strings as they are, integers as decimal strings, dates as
// YYYY-MM-DD, timestamps as milliseconds since the epoch (a decimal string),
// null as null.
//
// Usage: node read.mjs <http base> <lake location> <table> <metadata file>
//
//   http base      the URL that serves the lake's folder, e.g. http://127.0.0.1:8080
//   lake location  the lake as the table's metadata names it, e.g. file:///tmp/lake
//   table          the dataset, e.g. ihv_driver (the table is <lake>/<table>)
//   metadata file  the current metadata file's name, e.g. 00003-<uuid>.metadata.json
//
// icebird reads over HTTP with fetch, and follows the absolute locations in
// the table's metadata (manifest list, manifests, data files). An
// hdc-export lake in a folder records file:// locations, which Node's fetch
// does not read; this script's fetch maps the lake location onto the HTTP
// base and refuses any other location. It also fails on any HTTP error,
// which icebird does not check for Avro files. It exits non-zero on any
// error.
//
// icebird 0.3.1 cannot inflate the Avro files iceberg-go writes (see
// avro-deflate.mjs); the hook registered here gives its Avro reader Node's
// zlib instead. ICEBIRD_STOCK_DEFLATE=1 leaves icebird as it is, to show
// the failure.
import { register } from 'node:module'

if (process.env.ICEBIRD_STOCK_DEFLATE !== '1') {
  register('./avro-deflate.mjs', import.meta.url)
}
const { icebergMetadata, icebergRead } = await import('icebird')

const [base, location, table, metadataFileName] = process.argv.slice(2)
if (!base || !location || !table || !metadataFileName) {
  console.error('usage: node read.mjs <http base> <lake location> <table> <metadata file>')
  process.exit(2)
}

const httpFetch = globalThis.fetch
const lakePrefix = location.replace(/\/+$/, '') + '/'
const basePrefix = base.replace(/\/+$/, '') + '/'
/** @type {typeof fetch} */
globalThis.fetch = async (input, init) => {
  let url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  if (url.startsWith(lakePrefix)) {
    url = basePrefix + url.slice(lakePrefix.length)
  } else if (!url.startsWith(basePrefix)) {
    throw new Error(`location outside the lake: ${url}`)
  }
  const res = await httpFetch(url, init)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${res.statusText}`)
  return res
}

/**
 * Normalises one value read by hyparquet for the JSON output.
 * @param {any} v
 * @param {string} type the Iceberg type of the column
 * @returns {string | null}
 */
function normalise(v, type) {
  if (v === null || v === undefined) return null
  switch (type) {
    case 'date':
      return v.toISOString().slice(0, 10)
    case 'timestamp':
    case 'timestamptz':
      return String(v.getTime())
    case 'int':
    case 'long':
      return String(v)
    case 'string':
      return v
    default:
      throw new Error(`column type ${type} is not normalised by read.mjs`)
  }
}

const tableUrl = basePrefix + table
const metadata = await icebergMetadata({ tableUrl, metadataFileName })
const schema = metadata.schemas.find(s => s['schema-id'] === metadata['current-schema-id'])
if (!schema) throw new Error('the current schema is missing from the metadata')
const fields = schema.fields
const records = await icebergRead({ tableUrl, metadata })
const rows = records.map(r => fields.map(f => normalise(r[f.name], f.type)))
const key = row => JSON.stringify(row)
rows.sort((a, b) => {
  const ka = key(a)
  const kb = key(b)
  return ka < kb ? -1 : ka > kb ? 1 : 0
})
process.stdout.write(JSON.stringify({ columns: fields.map(f => f.name), rows }) + '\n')
