// Reads an index folder's Parquet row metadata with DuckDB, as a user would, and prints JSON:
// the column names and DuckDB types, the row count, and the rows (path, size, mtime as epoch ns, sha256, error).
//   node tools/duckdb/read-index.mjs INDEX
import { DuckDBInstance } from '@duckdb/node-api';

const index = process.argv[2];
if (!index) { console.error('usage: node read-index.mjs INDEX'); process.exit(2); }
const glob = `${index.replaceAll("'", "''")}/part-*.parquet`;
const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
const describe = await connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${glob}')`);
const rows = await connection.runAndReadAll(
  `SELECT path, size, epoch_ns(mtime)::VARCHAR AS mtime_ns, sha256, error, model_id FROM read_parquet('${glob}') ORDER BY path`);
console.log(JSON.stringify({
  columns: describe.getRowObjectsJson().map(r => ({ name: r.column_name, type: r.column_type })),
  rows: rows.getRowObjectsJson(),
}));
