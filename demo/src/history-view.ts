/**
 * Time travel: a slider over the log's history. Position i shows the board after the first i
 * events of the total order (0 = the empty board), read-only, computed by
 * `state('board', { at: { eventId } })` without touching the present; the last position is
 * "now", and the board follows live events again.
 */
import type { StoredEvent } from '../../src/index.ts';
import { clock } from './dom.ts';

export class HistoryView {
  private events: StoredEvent<unknown>[] = [];
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
      this.moveTo(this.events.length);
      slider.focus();
    });
  }

  /** The log changed: the slider grows; a point in the past stays where it was. */
  update(events: StoredEvent<unknown>[]): void {
    this.events = events;
    this.slider.max = String(events.length);
    this.slider.value = String(this.position ?? events.length);
    this.describe();
  }

  isTravelling(): boolean {
    return this.position !== undefined;
  }

  private moveTo(position: number): void {
    const max = this.events.length;
    const clamped = Math.max(0, Math.min(max, Math.round(position)));
    this.position = clamped === max ? undefined : clamped;
    this.slider.value = String(clamped);
    this.describe();
    if (this.position === undefined) this.onChange('now');
    else if (this.position === 0) this.onChange('start');
    else this.onChange(this.events[this.position - 1] as StoredEvent<unknown>);
  }

  private describe(): void {
    const max = this.events.length;
    const position = this.position ?? max;
    const event = this.events[position - 1];
    const text =
      this.position === undefined
        ? `Now: all ${max} events`
        : position === 0
          ? `Before the first event (0 of ${max})`
          : `After event ${position} of ${max}: ${event?.type ?? ''} at ${event ? clock(event.time) : ''}`;
    this.label.value = text;
    this.slider.setAttribute('aria-valuetext', text);
    this.backToNow.disabled = this.position === undefined;
  }
}
