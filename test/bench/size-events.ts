/**
 * The demo board's event mix for the storage-size benchmarks (issue 18, "Measure first"): the
 * streams, types and data shapes demo/src/board.ts and demo/src/notes.ts write, seeded, so that
 * Node and the browser append the very same events. Pure (no I/O): it runs in the bench worker too.
 *
 * The mix, per 100 events: 50 `yjs.update` on `card:<uuid>/notes` (real Yjs updates of a Y.Text,
 * mostly a keystroke or two, as a textarea bound by bindYDoc writes them) with a `yjs.snapshot`
 * every 200 updates of a stream (bindYDoc's DEFAULT_SNAPSHOT_EVERY); 25 CardMoved, 10 CardAdded
 * and 10 CardRenamed on `card:<uuid>`; 3 CardDeleted; 2 column events on `board:main`. Titles are
 * drawn from a small vocabulary: a team's board repeats its words. One new card in 50 gets notes;
 * the 3 latest such are typed into (a few hundred keystrokes each), older documents are dropped
 * from memory and never written again.
 */
import * as Y from 'yjs';
import { encodeBase64 } from '../../src/core/base64.ts';
import type { JsonObject } from '../../src/index.ts';
import { seededRandom } from '../../src/sync/transports/memory.ts';

export interface SizeEvent {
  stream: string;
  event: { type: string; data: JsonObject };
}

const WORDS = (
  'fix login redirect safari release notes draft onboarding flow review pricing page update ' +
  'dependencies broken build ci flaky test migrate database schema add dark mode export csv ' +
  'invoice bug customer feedback sprint planning retro write docs api rate limit search index ' +
  'mobile layout header footer accessibility audit translate strings german french cache ' +
  'headers upload avatar crop image resize email template password reset token expiry'
).split(' ');

const COLUMNS = ['todo', 'doing', 'done'];
const NOTED = 0.02;
const ACTIVE_NOTES = 3;
const SNAPSHOT_EVERY = 200;

interface Notes {
  doc: Y.Doc;
  updates: number;
}

/** An endless, seeded sequence of the demo's events; `next()` gives one. */
export class DemoMix {
  private readonly random: () => number;
  private readonly cards: string[] = [];
  private readonly notes = new Map<string, Notes>();
  private positions = 0;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  /** The events from index `from` (the ones before are generated and dropped) to `to`. */
  static range(seed: number, from: number, to: number): SizeEvent[] {
    const mix = new DemoMix(seed);
    for (let i = 0; i < from; i++) mix.next();
    const out: SizeEvent[] = [];
    for (let i = from; i < to; i++) out.push(mix.next());
    return out;
  }

  next(): SizeEvent {
    const r = this.random() * 100;
    if (this.cards.length < 5 || (r >= 50 && r < 60)) return this.cardAdded();
    if (r < 50) return this.noteUpdate();
    const card = this.pick(this.cards);
    const stream = `card:${card}`;
    if (r < 85) {
      const position = this.nextPosition();
      return {
        stream,
        event: { type: 'CardMoved', data: { column: this.pick(COLUMNS), position } },
      };
    }
    if (r < 95) return { stream, event: { type: 'CardRenamed', data: { title: this.title() } } };
    if (r < 98) {
      // A card with notes being typed stays: its document would be dropped mid-edit.
      if (!this.notes.has(card)) this.cards.splice(this.cards.indexOf(card), 1);
      return { stream, event: { type: 'CardDeleted', data: {} } };
    }
    const column = `col-${this.hex(8)}`;
    return r < 99
      ? {
          stream: 'board:main',
          event: { type: 'ColumnAdded', data: { column, title: this.title(2), position: 4 } },
        }
      : {
          stream: 'board:main',
          event: { type: 'ColumnRenamed', data: { column: 'doing', title: this.title(2) } },
        };
  }

  private cardAdded(): SizeEvent {
    const card = this.uuid();
    this.cards.push(card);
    if (this.notes.size === 0 || this.random() < NOTED) {
      const doc = new Y.Doc();
      doc.clientID = Math.floor(this.random() * 2 ** 31);
      this.notes.set(card, { doc, updates: 0 });
      // Only the latest noted cards are typed into (the documents stay few in memory).
      const [stale] = this.notes.keys();
      if (this.notes.size > ACTIVE_NOTES && stale !== undefined) {
        this.notes.get(stale)?.doc.destroy();
        this.notes.delete(stale);
      }
    }
    const data = { title: this.title(), column: 'todo', position: this.nextPosition() };
    return { stream: `card:${card}`, event: { type: 'CardAdded', data } };
  }

  private noteUpdate(): SizeEvent {
    const card = this.pick([...this.notes.keys()]);
    const notes = this.notes.get(card)!;
    const stream = `card:${card}/notes`;
    if (notes.updates > 0 && notes.updates % SNAPSHOT_EVERY === 0) {
      notes.updates += 1;
      const state = encodeBase64(Y.encodeStateAsUpdate(notes.doc));
      const covers = { [String(notes.doc.clientID)]: notes.updates };
      const data = { state, covers, updates: SNAPSHOT_EVERY };
      return { stream, event: { type: 'yjs.snapshot', data } };
    }
    const text = notes.doc.getText('text');
    let update: Uint8Array | undefined;
    const listener = (u: Uint8Array) => {
      update = u;
    };
    notes.doc.on('update', listener);
    const r = this.random();
    if (r < 0.1 && text.length > 5) {
      const length = 1 + Math.floor(this.random() * 5);
      text.delete(Math.floor(this.random() * (text.length - length)), length);
    } else {
      // Mostly a keystroke or two at the end; sometimes a pasted word somewhere inside.
      const typed =
        r < 0.8
          ? this.pick(WORDS).slice(0, 1 + Math.floor(this.random() * 2))
          : ` ${this.pick(WORDS)}`;
      const at = r < 0.8 ? text.length : Math.floor(this.random() * (text.length + 1));
      text.insert(at, typed);
    }
    notes.doc.off('update', listener);
    notes.updates += 1;
    return { stream, event: { type: 'yjs.update', data: { update: encodeBase64(update!) } } };
  }

  private nextPosition(): number {
    this.positions += 1;
    // endOf gives whole numbers; dropPosition halves between neighbours.
    return this.random() < 0.6
      ? this.positions
      : this.positions - 0.5 ** (1 + Math.floor(this.random() * 4));
  }

  private title(words = 3 + Math.floor(this.random() * 4)): string {
    const picked = Array.from({ length: words }, () => this.pick(WORDS));
    const first = picked[0]!;
    picked[0] = first[0]!.toUpperCase() + first.slice(1);
    return picked.join(' ');
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private hex(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += Math.floor(this.random() * 16).toString(16);
    return out;
  }

  /** A crypto.randomUUID look-alike, seeded (the demo names cards so). */
  private uuid(): string {
    return `${this.hex(8)}-${this.hex(4)}-4${this.hex(3)}-a${this.hex(3)}-${this.hex(12)}`;
  }
}
