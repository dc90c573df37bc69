/** A fresh signing identity for tests of signing and verification (core/integrity.ts). */
import {
  generateSigningKey,
  importSigningKey,
  newReplicaIdentity,
  type SigningIdentity,
} from '../../src/core/replica-identity.ts';

export async function signingIdentity(): Promise<SigningIdentity> {
  const key = await generateSigningKey();
  const { replicaId, nonce } = newReplicaIdentity(key.publicKey);
  return {
    replicaId,
    privateKey: await importSigningKey(key),
    keyText: `${key.publicKey}.${nonce}`,
  };
}
