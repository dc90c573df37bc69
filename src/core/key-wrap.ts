/**
 * One key wrapped under another (AES-256-GCM with the outer key's wrap key, core/keyring.ts), for
 * the `$keyring` stream's events (core/keyring-events.ts). The wrapped key's id is the additional
 * data: a wrapped text moved to another id fails to open.
 */
import { decodeBase64Url, encodeBase64Url } from './base64.ts';
import { type SpaceKey, spaceKey } from './keyring.ts';

const IV_BYTES = 12;
const encoder = new TextEncoder();
const context = (kid: string) => encoder.encode(`chronicle/wrap/${kid}`) as Uint8Array<ArrayBuffer>;

export async function wrapKey(under: SpaceKey, key: SpaceKey): Promise<string> {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(
    await globalThis.crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: context(key.kid) },
      under.wrap,
      key.raw,
    ),
  );
  const out = new Uint8Array(IV_BYTES + sealed.length);
  out.set(iv);
  out.set(sealed, IV_BYTES);
  return encodeBase64Url(out);
}

/** The wrapped key, or undefined when the text does not open to the key it names. */
export async function unwrapKey(
  under: SpaceKey,
  kid: string,
  text: string,
): Promise<SpaceKey | undefined> {
  try {
    const bytes = decodeBase64Url(text);
    const raw = new Uint8Array(
      await globalThis.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bytes.subarray(0, IV_BYTES), additionalData: context(kid) },
        under.wrap,
        bytes.subarray(IV_BYTES),
      ),
    );
    const key = await spaceKey(raw);
    return key.kid === kid ? key : undefined;
  } catch {
    return undefined;
  }
}
