/**
 * A virtual clock and timer queue for deterministic sync tests: transports and controllers get
 * their timers from here, and `run()` advances time task by task, letting every promise settle
 * between tasks (memory storage resolves in microtasks).
 */
import type { Timers } from '../../src/sync/link.ts';

interface Task {
  at: number;
  order: number;
  fn: () => void;
}

import { cryptoInFlight } from '../../src/core/integrity.ts';

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export class VirtualTime implements Timers {
  now = 0;
  private order = 0;
  private tasks: Task[] = [];

  setTimeout = (fn: () => void, ms: number): unknown => {
    const task: Task = { at: this.now + Math.max(0, ms), order: this.order++, fn };
    let i = this.tasks.length;
    while (
      i > 0 &&
      (this.tasks[i - 1]!.at > task.at ||
        (this.tasks[i - 1]!.at === task.at && this.tasks[i - 1]!.order > task.order))
    )
      i--;
    this.tasks.splice(i, 0, task);
    return task;
  };

  clearTimeout = (handle: unknown): void => {
    const i = this.tasks.indexOf(handle as Task);
    if (i >= 0) this.tasks.splice(i, 1);
  };

  /** For memoryTransportPair's `schedule` option. */
  schedule = (fn: () => void, ms: number): void => {
    this.setTimeout(fn, ms);
  };

  get pending(): number {
    return this.tasks.length;
  }

  /** Runs tasks until none is left, `maxSteps` ran, or time passed `untilTime`. */
  async run(maxSteps: number, untilTime = Number.POSITIVE_INFINITY): Promise<number> {
    await settle();
    let steps = 0;
    while (steps < maxSteps) {
      // WebCrypto (signatures: core/integrity.ts) answers from a thread pool, later than one
      // turn of the event loop: time does not move on while an operation is in flight.
      for (let i = 0; i < 1000 && cryptoInFlight() > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        await settle();
      }
      const task = this.tasks[0];
      if (task === undefined || task.at > untilTime) break;
      this.tasks.shift();
      this.now = Math.max(this.now, task.at);
      task.fn();
      steps++;
      await settle();
    }
    if (untilTime !== Number.POSITIVE_INFINITY && this.now < untilTime) this.now = untilTime;
    return steps;
  }
}
