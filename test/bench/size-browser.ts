/**
 * `npm run bench -- storage`, the browsers (issue 18, "Measure first"): IndexedDB's bytes on disk
 * per event against the raw JSON of the same events, on a fresh persistent profile on disk
 * (Chromium here; Firefox in size-firefox.ts, through the same runBrowserSize).
 *
 * A store in the bench worker (size-worker.ts) appends the demo's mix through the public API and
 * syncs it to a real sync server in this process, until nothing is pending (its log then holds
 * the signed copies). At each size the store is closed, estimate() read, and the browser closed
 * (Chromium's LevelDB writes its memtable out and closes its log); then the profile's IndexedDB
 * folder is weighed: LevelDB files (.ldb tables, the .log not yet compacted, MANIFEST...) and the
 * blob folder. The next size relaunches Chromium on the same profile and appends the rest.
 * The baseline is the raw JSON of the records the server received from this store.
 *
 * Then, at each size, a second store on a profile of its own receives those events from the
 * server (ReceiverProfile): a team member's device, holding another replica's events (each with
 * its signature, as the writer holds them). Weighed the same way, against the same baseline.
 * BENCH_STORAGE_RECEIVE=0 leaves it out.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { type BenchPage, inWorker } from './browser-calls.ts';
import { launchProfile, openBenchPage } from './browser-scale.ts';
import { type BenchResult, result } from './results.ts';
import { folderBytes, label, rawJsonBytes, SIZE_SEED, sizeCheckpoints } from './size-measure.ts';
import type { ReceiveOutcome } from './size-worker.ts';
import { type BenchServer, startServer, syncUrl } from './sync-server.ts';

const SPACE = 'size-browser';
const CALL = 100_000;

/** A browser the suite weighs: how to run the bench page on a profile, and what to weigh. */
export interface SizeBrowser {
  name: string;
  /** Launches the browser on `profile`, runs `run` on the bench page at `url`, closes it. */
  session<T>(profile: string, url: string, run: (page: BenchPage) => Promise<T>): Promise<T>;
  /** The bytes of the origin's IndexedDB files, and what they are made of, in words. */
  weigh(profile: string, events: number): { total: number; detail: string };
}

/** Chromium: the profile's IndexedDB folder, LevelDB files and blob folders. */
export const chromiumSize: SizeBrowser = {
  name: 'Chromium',
  async session(profile, url, run) {
    const context = await launchProfile(profile);
    try {
      return await run(await openBenchPage(context, url));
    } finally {
      await context.close();
    }
  },
  weigh(profile, events) {
    const root = join(profile, 'Default', 'IndexedDB');
    let blobs = 0;
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name.endsWith('.blob')) {
        blobs += folderBytes(join(root, entry.name));
      }
    }
    const log = folderBytes(root, (name) => name.endsWith('.log'));
    const per = (n: number) => (n / events).toFixed(0);
    return {
      total: folderBytes(root),
      detail: `IndexedDB/ after the browser closed: LevelDB (.ldb tables are Snappy-compressed) of which .log ${per(log)}, blobs ${per(blobs)} B/event`,
    };
  },
};

export function runSizeBrowserBenches(): Promise<BenchResult[]> {
  return runBrowserSize(chromiumSize);
}

export async function runBrowserSize(browser: SizeBrowser): Promise<BenchResult[]> {
  const sizes = sizeCheckpoints();
  const built = await startBuiltServer(['test/browser/fixtures/bench.html']);
  const space = `${SPACE}-${browser.name.toLowerCase()}`;
  const t = await startServer(space);
  const profile = mkdtempSync(join(tmpdir(), 'chronicle-size-profile-'));
  const url = syncUrl(t, 'browser');
  const receiving = process.env.BENCH_STORAGE_RECEIVE !== '0';
  const receiver = receiving ? new ReceiverProfile(browser, built.url, t) : undefined;
  const results: BenchResult[] = [];
  try {
    const serverLog = await t.storage.openSpace(space);
    let seeded = 0;
    let copied = 0;
    let raw = 0;
    let usageAtStart = 0;
    // The estimate() of a size is read twice: right after the store closed, and at the start of
    // the next session (after a restart of the browser, which flushes and checkpoints).
    let previous: { size: number; perEvent: number } | undefined;
    const reopened = (usage: number) => {
      if (previous === undefined) return;
      results.push(
        result(
          `storage ${label(previous.size)}: ${browser.name} IndexedDB, estimate() delta after a restart`,
          'B/event',
          (usage - usageAtStart) / previous.size,
          previous.perEvent,
          'estimate().usage once the browser restarted on the profile and the store opened, minus before the first append; baseline: raw JSON',
        ),
      );
    };
    for (const size of [...sizes, undefined]) {
      const from = seeded;
      const to = size ?? seeded;
      // 100k events a call: a driver's call has a timeout (puppeteer's protocolTimeout: 180 s).
      const seed = await browser.session(profile, built.url, async (page) => {
        const calls = [];
        for (let at = from; calls.length === 0 || at < to; at += CALL) {
          const end = Math.min(to, at + CALL);
          calls.push(await inWorker(page, 'storageSeed', 'size', url, at, end, SIZE_SEED));
        }
        return {
          ms: calls.reduce((sum, c) => sum + c.ms, 0),
          usageBefore: calls[0]!.usageBefore,
          usageOpened: calls[0]!.usageOpened,
          usageAfter: calls.at(-1)!.usageAfter,
        };
      });
      if (from === 0) usageAtStart = seed.usageBefore;
      reopened(seed.usageOpened);
      if (size === undefined) {
        if (receiver !== undefined) results.push(...(await receiver.reopen()));
        break;
      }
      seeded = size;
      while (copied < size) {
        const events = (await serverLog.readByPos(copied, 1000)).map((r) => r.event);
        if (events.length === 0) throw new Error(`the server's log ends at ${copied}`);
        raw += rawJsonBytes(events);
        copied += events.length;
      }
      const perEvent = raw / size;
      previous = { size, perEvent };
      const disk = browser.weigh(profile, size);
      const n = label(size);
      const took = `seeding + sync to ${n}: ${(seed.ms / 1000).toFixed(0)} s`;
      results.push(
        result(
          `storage ${n}: ${browser.name} IndexedDB, profile files`,
          'B/event',
          disk.total / size,
          perEvent,
          `${disk.detail}; ${took}; baseline: raw JSON`,
        ),
        result(
          `storage ${n}: ${browser.name} IndexedDB, estimate() usage delta`,
          'B/event',
          (seed.usageAfter - usageAtStart) / size,
          perEvent,
          'navigator.storage.estimate().usage after the store closed, minus before the first append; baseline: raw JSON',
        ),
      );
      console.error(`storage: ${browser.name} ${n} done (${took})`);
      if (receiver !== undefined) results.push(...(await receiver.receive(size, perEvent)));
    }
    return results;
  } finally {
    rmSync(profile, { recursive: true, force: true });
    receiver?.remove();
    await t.stop();
    await built.close();
  }
}

/**
 * The receiving side: a store on a profile of its own, another replica of the space, that
 * catches up through the sync server on the events the writing store synced there, at each size.
 * Its log holds them as a team member's device does. Weighed as the writer's profile is, against
 * the same baseline: the raw JSON of the signed records the server holds.
 */
class ReceiverProfile {
  private readonly profile = mkdtempSync(join(tmpdir(), 'chronicle-size-receiver-'));
  private readonly browser: SizeBrowser;
  private readonly page: string;
  private readonly url: string;
  private held = 0;
  private usageAtStart = 0;
  private previous: { size: number; perEvent: number } | undefined;

  constructor(browser: SizeBrowser, page: string, t: BenchServer) {
    this.browser = browser;
    this.page = page;
    this.url = syncUrl(t, 'receiver');
  }

  private name(size: number, what: string): string {
    return `storage ${label(size)}: ${this.browser.name} IndexedDB receiving another replica's events, ${what}`;
  }

  private call(to: number): Promise<ReceiveOutcome> {
    const from = this.held;
    return this.browser.session(this.profile, this.page, (page) =>
      inWorker(page, 'storageReceive', 'size-received', this.url, from, to),
    );
  }

  /** Catches up to `size` events, weighs the profile; `perEvent`: the signed records' raw JSON. */
  async receive(size: number, perEvent: number): Promise<BenchResult[]> {
    const got = await this.call(size);
    if (this.held === 0) this.usageAtStart = got.usageBefore;
    const out = this.reopened(got.usageOpened);
    if (got.held !== size) throw new Error(`bench: the receiver holds ${got.held} of ${size}`);
    this.held = size;
    this.previous = { size, perEvent };
    const disk = this.browser.weigh(this.profile, size);
    const took = `catch-up to ${label(size)}: ${(got.ms / 1000).toFixed(0)} s`;
    const held = got.heldJson / size;
    const baseline = `baseline: raw JSON of the signed records (as the writer stored and sent them; the records as this store holds them are ${held.toFixed(0)} B/event of JSON)`;
    out.push(
      result(
        this.name(size, 'profile files'),
        'B/event',
        disk.total / size,
        perEvent,
        `${disk.detail}; ${took}; ${baseline}`,
      ),
      result(
        this.name(size, 'estimate() usage delta'),
        'B/event',
        (got.usageAfter - this.usageAtStart) / size,
        perEvent,
        `navigator.storage.estimate().usage after the store closed, minus before its first sync; ${baseline}`,
      ),
      result(
        this.name(size, 'events held without $sig'),
        'events',
        got.unsigned,
        size,
        `records of its log with no $sig (none expected: every event travels and is held with its signature); ratio: their share of the ${got.held} held`,
      ),
    );
    console.error(`storage: ${this.browser.name} receiver ${label(size)} done (${took})`);
    return out;
  }

  /** The last size's estimate() after a restart: the browser opens the store once more. */
  async reopen(): Promise<BenchResult[]> {
    return this.reopened((await this.call(this.held)).usageOpened);
  }

  private reopened(usage: number): BenchResult[] {
    if (this.previous === undefined) return [];
    const { size, perEvent } = this.previous;
    return [
      result(
        this.name(size, 'estimate() delta after a restart'),
        'B/event',
        (usage - this.usageAtStart) / size,
        perEvent,
        'estimate().usage once the browser restarted on the profile and the store opened, minus before its first sync; baseline: raw JSON of the signed records',
      ),
    ];
  }

  remove(): void {
    rmSync(this.profile, { recursive: true, force: true });
  }
}
