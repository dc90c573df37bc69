/** The shapes of StoreOptions.encryption and of what it reports (store/encryption.ts). */
import type { KeyMaterial } from '../core/keyring.ts';

export interface EncryptionOptions {
  /** The space key: 32 bytes, an extractable 256-bit AES CryptoKey, or a function giving one. */
  key: KeyMaterial | (() => KeyMaterial | Promise<KeyMaterial>);
  /**
   * The space's older keys (rotation): what they sealed stays readable here, and they are
   * wrapped under `key` in the log for every device that is given only `key`.
   */
  previousKeys?: readonly KeyMaterial[];
  /**
   * Hides stream names and event types from the server too: a second secret, 32 bytes, given
   * to every device like the key and never rotated (one name keeps one pseudonym for the life of
   * the space). The envelope then carries a keyed pseudonym of the stream's name and the type
   * `~`; the name and the type are sealed with the content. Stream names starting with `~` are
   * taken as pseudonyms already. Every replica of the space must give the same secret.
   */
  names?: KeyMaterial | (() => KeyMaterial | Promise<KeyMaterial>);
}

/** What this replica holds but cannot read (SyncStatus.unreadable). */
export interface UnreadableStatus {
  /** Events seen since the store opened that no key here opens. */
  events: number;
  /** The key ids they name. */
  keys: string[];
}
