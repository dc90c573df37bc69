/**
 * A server process that only compacts (postgres-compaction.test.ts kills it with SIGKILL): opens
 * postgresStorage on the schema given, tells the parent on stdout, then runs the compactor one
 * block per transaction until killed or done.
 */
import { postgresStorage } from '../../src/server/postgres.ts';

const [url, schema] = process.argv.slice(2);
const storage = postgresStorage(url!, { schema: schema!, compaction: { tailEvents: 0 } });
await storage.openSpace('s');
process.stdout.write('compacting\n');
const report = await storage.compact!();
process.stdout.write(`done ${report.events}\n`);
await storage.close();
