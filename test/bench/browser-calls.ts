/**
 * Calls from Node into the bench page (browser-page.ts), shared by the browser bench suites:
 * the page is a Playwright page (Chromium) or a puppeteer-core page (Firefox), both of which
 * evaluate a function with one argument in it.
 */
import type { InWorkerBench } from './browser-shared.ts';

/** What the suites need of a page, from Playwright and from puppeteer-core alike. */
export interface BenchPage {
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
}

type BenchWindow = { bench: { callInWorker(method: string, args: unknown[]): Promise<unknown> } };

/** Runs one of the bench worker's in-worker benchmarks (browser-worker.ts) from the page. */
export function inWorker<K extends keyof InWorkerBench>(
  page: BenchPage,
  method: K,
  ...args: Parameters<InWorkerBench[K]>
): Promise<Awaited<ReturnType<InWorkerBench[K]>>> {
  return page.evaluate(
    ({ method, args }) => (window as unknown as BenchWindow).bench.callInWorker(method, args),
    { method, args: args as unknown[] },
  ) as Promise<Awaited<ReturnType<InWorkerBench[K]>>>;
}
