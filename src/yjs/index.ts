/**
 * @chronicle-es/store/yjs: Yjs documents stored as event streams, with the audit trail, time
 * travel and sync of every other stream.
 *
 * @example
 * import { bindYDoc, docAt } from '@chronicle-es/store/yjs';
 * const { doc, ready, destroy } = bindYDoc(store, 'card-1/notes');
 * await ready;
 * doc.getText('notes').insert(0, 'Hello');
 */
export { decodeBase64, encodeBase64 } from '../core/base64.ts';
export {
  type BindYDocOptions,
  bindYDoc,
  DEFAULT_CACHE_EVERY,
  DEFAULT_SNAPSHOT_EVERY,
  type YDocBinding,
} from './bind.ts';
export { type DocAtOptions, docAt } from './doc-at.ts';
export {
  type Covers,
  SNAPSHOT_TYPE,
  UPDATE_TYPE,
  type YSnapshotData,
  type YUpdateData,
} from './events.ts';
