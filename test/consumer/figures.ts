/**
 * Figures the consumer tests measure for the README and the closing note (tarball size,
 * install time and package count, bundle sizes): written to test-results/consumer/figures.json,
 * one key per figure. They are read by people; no test asserts a duration.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const dir = resolve(import.meta.dirname, '../../test-results/consumer');
const file = join(dir, 'figures.json');

export function recordFigures(figures: Record<string, number | string>): void {
  mkdirSync(dir, { recursive: true });
  let current: Record<string, number | string> = {};
  try {
    current = JSON.parse(readFileSync(file, 'utf8')) as typeof current;
  } catch {
    // First figure of the run.
  }
  writeFileSync(file, `${JSON.stringify({ ...current, ...figures }, null, 2)}\n`);
}
