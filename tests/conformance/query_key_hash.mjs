// Prints @tanstack/query-core's hashKey of each query key in the JSON array read from stdin, one
// hash per line: the reference tests/conformance/query_key_conformance_test.cpp compares with.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(path.join(process.env.PEERS_DIR, 'package.json'));
const { hashKey } = await import(require.resolve('@tanstack/query-core'));

const keys = JSON.parse(readFileSync(0, 'utf8'));
for (const key of keys) process.stdout.write(hashKey(key) + '\n');
