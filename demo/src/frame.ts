/**
 * One place where the board and Activity are drawn from what the page holds (main.ts asks for a
 * view; conflicts are worked out first when asked for).
 *
 * Invariants:
 * 1. A view asked for is drawn before ask() returns, from the data the page holds then.
 *
 * Drawing on the next task instead, at most once per task and no sooner than the last drawing
 * took, kept a catching-up page responsive, but test/demo/bounded.test.ts reads the Activity and
 * the time-travelled board right after acting on them and failed; until those waits are made for
 * the drawn state, drawing stays synchronous.
 */
export class FrameRenderer<View extends string> {
  private readonly render: (views: ReadonlySet<View>) => void;

  /** `render` draws the views asked for, in the order it likes. */
  constructor(render: (views: ReadonlySet<View>) => void) {
    this.render = render;
  }

  ask(view: View): void {
    this.render(new Set([view]));
  }
}
