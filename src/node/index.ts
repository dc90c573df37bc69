/**
 * `@chronicle-es/store/node`: what only Node runs, kept out of the main entry so that a front
 * end's bundle never sees better-sqlite3 or node: modules. A back-end service opens its store
 * with the main entry's openStore on sqliteReplicaStorage and is a replica like a browser.
 *
 * @example
 * import { openStore } from '@chronicle-es/store';
 * import { sqliteReplicaStorage } from '@chronicle-es/store/node';
 * const store = await openStore({ name: 'svc', storage: sqliteReplicaStorage('./data/svc.db') });
 */
export { MissingDependencyError } from '../core/errors.ts';
export { type SqliteReplicaStorageOptions, sqliteReplicaStorage } from '../storage/sqlite.ts';
