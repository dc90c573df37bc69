/**
 * The storage conformance suite on real IndexedDB, in Chromium and in Firefox (CONVENTIONS: one
 * suite per interface, every implementation), plus the memory adapter as a control in the same
 * browser.
 */
import { describe } from 'vitest';
import { server } from 'vitest/browser';
import { indexedDbStorage } from '../../../src/storage/indexeddb.ts';
import { memoryStorage } from '../../../src/storage/memory.ts';
import { againstMemory } from '../../storage/against-memory.ts';
import { storageConformance } from '../../storage/conformance.ts';

const browser = server.browser;
const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let databases = 0;

describe.each([
  // A unique name per adapter: the BroadcastChannel of write notices is named after it.
  [`indexeddb (${browser})`, () => indexedDbStorage(`conformance-${run}-${++databases}`)],
  [`memory (${browser})`, () => memoryStorage()],
] as const)('%s', (name, factory) => {
  storageConformance(name, factory, { trims: true, bases: true });
});

againstMemory(
  `indexeddb (${browser})`,
  () => indexedDbStorage(`against-memory-${run}-${++databases}`),
  10,
);
