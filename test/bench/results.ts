/** The benchmark results file: one list of measurements, merged by name across runs and hosts. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface BenchResult {
  name: string;
  unit: string;
  value: number;
  baseline?: number;
  ratio?: number;
  note?: string;
}

export const RESULTS_FILE = join(import.meta.dirname, 'results', 'latest.json');

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function result(
  name: string,
  unit: string,
  value: number,
  baseline?: number,
  note?: string,
): BenchResult {
  const r: BenchResult = { name, unit, value: round(value) };
  if (baseline !== undefined) {
    r.baseline = round(baseline);
    r.ratio = round(value / baseline, 3);
  }
  if (note !== undefined) r.note = note;
  return r;
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Merges `results` into the file: entries with the same name are replaced. */
export function saveResults(results: BenchResult[]): void {
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  const existing: BenchResult[] = existsSync(RESULTS_FILE)
    ? (JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as BenchResult[])
    : [];
  const names = new Set(results.map((r) => r.name));
  const merged = [...existing.filter((r) => !names.has(r.name)), ...results];
  writeFileSync(RESULTS_FILE, `${JSON.stringify(merged, null, 2)}\n`);
}

export function printTable(results: BenchResult[]): void {
  const rows = results.map((r) => [
    r.name,
    `${r.value} ${r.unit}`,
    r.baseline === undefined ? '' : `${r.baseline} ${r.unit}`,
    r.ratio === undefined ? '' : `${r.ratio}`,
    r.note ?? '',
  ]);
  const header = ['benchmark', 'value', 'baseline', 'ratio', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}
