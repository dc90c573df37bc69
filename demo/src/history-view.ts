/**
 * Time travel: a slider over the log's history, one step per entry of the audit trail
 * (history-text.ts: an event, or a burst of note edits). Position i shows the board after the
 * first i entries of the total order (0 = the empty board), read-only, computed by
 * `state('board', { at: { eventId } })` (the entry's last event) without touching the present;
 * the last position is "now", and the board follows live events again.
 */
import type { StoredEvent } from '../../src/index.ts';
import { clock } from './dom.ts';
import type { HistoryEntry } from './history-text.ts';

export class HistoryView {
  private entries: HistoryEntry[] = [];
  private eventCount = 0;
  /** undefined while showing the present. */
  private position: number | undefined;

  private readonly slider: HTMLInputElement;
  private readonly label: HTMLOutputElement;
  private readonly backToNow: HTMLButtonElement;
  private readonly onChange: (at: StoredEvent<unknown> | 'start' | 'now') => void;

  constructor(
    slider: HTMLInputElement,
    label: HTMLOutputElement,
    backToNow: HTMLButtonElement,
    onChange: (at: StoredEvent<unknown> | 'start' | 'now') => void,
  ) {
    this.slider = slider;
    this.label = label;
    this.backToNow = backToNow;
    this.onChange = onChange;
    slider.addEventListener('input', () => this.moveTo(Number(slider.value)));
    backToNow.addEventListener('click', () => {
      this.moveTo(this.entries.length);
      slider.focus();
    });
  }

  /** The log changed: the slider grows; a point in the past stays where it was. */
  /** `entries`: the log's entries (history-text.ts), of `eventCount` events. */
  update(entries: HistoryEntry[], eventCount: number): void {
    this.entries = entries;
    this.eventCount = eventCount;
    this.slider.max = String(this.entries.length);
    this.slider.value = String(this.position ?? this.entries.length);
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
    this.describe();
    if (this.position === undefined) this.onChange('now');
    else if (this.position === 0) this.onChange('start');
    else this.onChange(this.entries[this.position - 1]?.events.at(-1) as StoredEvent<unknown>);
  }

  private describe(): void {
    const max = this.entries.length;
    const position = this.position ?? max;
    const entry = this.entries[position - 1];
    const last = entry?.events.at(-1);
    const events = this.eventCount === 1 ? '1 event' : `${this.eventCount} events`;
    const text =
      this.position === undefined
        ? `Now: the whole history (${events})`
        : position === 0
          ? `Before the first change (0 of ${max})`
          : `After change ${position} of ${max}: ${entry?.subject ?? ''}, ${entry?.summary ?? ''} at ${last ? clock(last.time) : ''}`;
    this.label.value = text;
    this.slider.setAttribute('aria-valuetext', text);
    this.backToNow.disabled = this.position === undefined;
  }
}
