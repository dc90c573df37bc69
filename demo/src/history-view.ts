/**
 * Time travel: a slider over the log's history, one step per entry of the audit trail
 * (history-text.ts: an event, or a burst of note edits). Position i shows the board after the
 * first i entries of the total order (0 = the empty board), read-only, computed by
 * `state('board', { at: { eventId } })` (the entry's last event) without touching the present;
 * the last position is "now", and the board follows live events again.
 *
 * On a bounded device (loaded-log.ts) the slider spans the loaded entries: position 0 is then the
 * board as of the oldest loaded event (the base), "Load earlier changes" pages older history in,
 * and the slider stays on the same change when entries are added in front. A point whose board
 * needs history the device cannot reach says that older history is on the server.
 */
import type { StoredEvent } from '../../src/index.ts';
import { olderText } from './activity-view.ts';
import { clock } from './dom.ts';
import type { HistoryEntry } from './history-text.ts';
import type { OlderState } from './loaded-log.ts';

/** What is loaded of the log, besides its entries (loaded-log.ts). */
export interface LoadedRange {
  /** The entries start at the board's first event. */
  complete: boolean;
  /** While not complete: the oldest loaded event, the board before the first entry. */
  base: StoredEvent<unknown> | undefined;
  older: OlderState;
  keeps: string;
}

export const POINT_ON_SERVER =
  'Older history is on the server: connect to see the board at this point.';

export class HistoryView {
  private entries: HistoryEntry[] = [];
  private eventCount = 0;
  private range: LoadedRange = {
    complete: true,
    base: undefined,
    older: { kind: 'idle' },
    keeps: '',
  };
  /** undefined while showing the present. */
  private position: number | undefined;
  /** The last event of the point shown (to stay on it when entries come in front). */
  private pointId: string | undefined;
  /** The board at the point shown needs history no server gives now. */
  private onServer = false;

  private readonly slider: HTMLInputElement;
  private readonly label: HTMLOutputElement;
  private readonly backToNow: HTMLButtonElement;
  private readonly earlier: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly onChange: (at: StoredEvent<unknown> | 'start' | 'now') => void;

  constructor(
    controls: {
      slider: HTMLInputElement;
      label: HTMLOutputElement;
      backToNow: HTMLButtonElement;
      earlier: HTMLButtonElement;
      status: HTMLElement;
    },
    onChange: (at: StoredEvent<unknown> | 'start' | 'now') => void,
    loadEarlier: () => void,
  ) {
    const { slider, backToNow } = controls;
    this.slider = slider;
    this.label = controls.label;
    this.backToNow = backToNow;
    this.earlier = controls.earlier;
    this.status = controls.status;
    this.onChange = onChange;
    slider.addEventListener('input', () => this.moveTo(Number(slider.value)));
    backToNow.addEventListener('click', () => {
      this.moveTo(this.entries.length);
      slider.focus();
    });
    this.earlier.addEventListener('click', loadEarlier);
  }

  /**
   * The log changed: the slider grows; a point in the past stays where it was, also when older
   * entries came in front. `entries`: the loaded entries (history-text.ts), of `eventCount` events.
   */
  update(entries: HistoryEntry[], eventCount: number, range?: LoadedRange): void {
    this.entries = entries;
    this.eventCount = eventCount;
    if (range !== undefined) this.range = range;
    if (this.position !== undefined && this.pointId !== undefined) {
      const index = entries.findIndex((e) => e.events.at(-1)?.id === this.pointId);
      if (index >= 0) this.position = index + 1;
    }
    this.slider.max = String(this.entries.length);
    this.slider.value = String(this.position ?? this.entries.length);
    this.describe();
  }

  /** The board at the point shown could not be read: its history is on the server. */
  pointOnServer(onServer: boolean): void {
    this.onServer = onServer;
    this.describe();
  }

  isTravelling(): boolean {
    return this.position !== undefined;
  }

  private moveTo(position: number): void {
    const max = this.entries.length;
    const clamped = Math.max(0, Math.min(max, Math.round(position)));
    this.position = clamped === max ? undefined : clamped;
    this.slider.value = String(clamped);
    this.onServer = false;
    const at = this.pointAt(this.position);
    this.pointId = typeof at === 'object' ? at.id : undefined;
    this.describe();
    this.onChange(at);
  }

  /** What position `position` shows: now, the empty board, or the board after an event. */
  private pointAt(position: number | undefined): StoredEvent<unknown> | 'start' | 'now' {
    if (position === undefined) return 'now';
    if (position > 0) return this.entries[position - 1]?.events.at(-1) as StoredEvent<unknown>;
    return this.range.complete || this.range.base === undefined ? 'start' : this.range.base;
  }

  private describe(): void {
    const max = this.entries.length;
    const position = this.position ?? max;
    const entry = this.entries[position - 1];
    const last = entry?.events.at(-1);
    const events = this.eventCount === 1 ? '1 event' : `${this.eventCount} events`;
    const { complete, base } = this.range;
    const text =
      this.position === undefined
        ? complete
          ? `Now: the whole history (${events})`
          : `Now: the history loaded (${events})`
        : position === 0
          ? complete || base === undefined
            ? `Before the first change (0 of ${max})`
            : `Before the first change loaded (0 of ${max}), at ${clock(base.time)}`
          : `After change ${position} of ${max}: ${entry?.subject ?? ''}, ${entry?.summary ?? ''} at ${last ? clock(last.time) : ''}`;
    this.label.value = text;
    this.slider.setAttribute('aria-valuetext', text);
    this.backToNow.disabled = this.position === undefined;
    this.earlier.hidden = complete;
    this.earlier.setAttribute('aria-disabled', String(this.range.older.kind === 'loading'));
    const status = this.onServer
      ? POINT_ON_SERVER
      : // What the device keeps is told under Activity; here only loading and failures.
        olderText(this.range.older, true, '');
    this.status.textContent = status;
    this.status.dataset.state = this.onServer ? 'offline' : this.range.older.kind;
  }
}
