/** The tarball global-setup.ts packed for this run, as the consumer tests see it. */
import { inject } from 'vitest';

export interface PackedManifest {
  name: string;
  version: string;
  license?: string;
  type?: string;
  exports?: Record<string, unknown>;
  bin?: Record<string, string>;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export interface PackedPackage {
  /** The run's temporary folder: the tarball in pack/, one folder per consumer beside it. */
  root: string;
  tarball: string;
  filename: string;
  /** Bytes of the gzipped tarball, and of its files unpacked. */
  size: number;
  unpackedSize: number;
  entryCount: number;
  integrity: string;
  files: string[];
  manifest: PackedManifest;
}

declare module 'vitest' {
  export interface ProvidedContext {
    consumerPack: PackedPackage;
  }
}

export function packed(): PackedPackage {
  return inject('consumerPack');
}
