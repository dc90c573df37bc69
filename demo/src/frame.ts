/**
 * Renders once per task, whatever asked for it meanwhile: a catch-up delivers a board
 * state, a log refresh and a sync status per batch, and rebuilding 7,000 cards (or the Activity's
 * card list) for each of them kept the page busy long after the worker had the board.
 *
 * Invariants:
 * 1. Every view asked for before a frame is rendered in that frame, once, from the data the page
 *    holds then (the newest).
 * 2. A view asked for while the frame renders (a render that asks for another) waits for the
 *    next frame, so a frame never loops.
 * 3. After a render that took d ms, the next one starts no sooner than d ms after it ended: a
 *    page that cannot keep up with the changes spends at most about half its time drawing them,
 *    and the rest on input (and on the two cores it shares with its worker).
 */
export class FrameRenderer<View extends string> {
  private asked = new Set<View>();
  private requested = false;
  /** When the last render ended, and how long it took (invariant 3). */
  private last = { end: 0, took: 0 };

  private readonly render: (views: ReadonlySet<View>) => void;

  /** `render` draws the views asked for, in the order it likes. */
  constructor(render: (views: ReadonlySet<View>) => void) {
    this.render = render;
  }

  ask(view: View): void {
    this.asked.add(view);
    if (this.requested) return;
    this.requested = true;
    // A task, not requestAnimationFrame: a tab in the background gets no frames at all, and its
    // board must still be right when it comes forward (and when a test reads it).
    const wait = this.last.end + this.last.took - performance.now();
    setTimeout(() => this.flush(), Math.max(0, wait));
  }

  /** Renders what was asked for now, without waiting for the frame (invariant 1). */
  flush(): void {
    this.requested = false;
    const views = this.asked;
    if (views.size === 0) return;
    this.asked = new Set();
    const start = performance.now();
    try {
      this.render(views);
    } finally {
      const end = performance.now();
      this.last = { end, took: end - start };
    }
  }
}
