/**
 * The meta fields of tamper evidence (core/integrity.ts), apart so that what only strips them
 * (an erased copy: core/keyring-events.ts) does not depend on the signing code.
 */
import type { JsonObject, JsonValue } from './events.ts';

export const INTEGRITY_META = {
  sig: '$sig',
  link: '$link',
  key: '$key',
  /** A tree signature's place and path (core/sign-trees.ts): with `$sig`, or not at all. */
  tree: '$tree',
} as const;

const INTEGRITY_KEYS: readonly string[] = Object.values(INTEGRITY_META);

/** Meta without the integrity fields: what the application wrote (undefined when nothing). */
export function withoutIntegrity(meta: JsonObject | undefined): JsonObject | undefined {
  if (meta === undefined) return undefined;
  let found = false;
  for (const key of INTEGRITY_KEYS) if (key in meta) found = true;
  if (!found) return meta;
  const out: JsonObject = {};
  for (const key of Object.keys(meta)) {
    if (!INTEGRITY_KEYS.includes(key)) out[key] = meta[key] as JsonValue;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
