/** Calls from Node into the bench page (browser-page.ts), shared by the Chromium bench suites. */
import type { Page } from 'playwright-core';
import type { InWorkerBench } from './browser-shared.ts';

type BenchWindow = { bench: { callInWorker(method: string, args: unknown[]): Promise<unknown> } };

/** Runs one of the bench worker's in-worker benchmarks (browser-worker.ts) from the page. */
export function inWorker<K extends keyof InWorkerBench>(
  page: Page,
  method: K,
  ...args: Parameters<InWorkerBench[K]>
): Promise<Awaited<ReturnType<InWorkerBench[K]>>> {
  return page.evaluate(
    ({ method, args }) => (window as unknown as BenchWindow).bench.callInWorker(method, args),
    { method, args: args as unknown[] },
  ) as Promise<Awaited<ReturnType<InWorkerBench[K]>>>;
}
