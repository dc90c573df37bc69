/**
 * `npm run soak`: the long soak (see soak.ts), not part of `npm test`.
 *
 *   npm run soak -- --seed 7 --duration 600 --clients 24
 *   npm run soak -- --faults all            every fault kind (today the same as the default)
 *   npm run soak -- --faults server-kill,cut --keep
 *
 * Defaults: a random seed (printed), 60 s, 12 clients, the fault kinds main survives (SAFE_KINDS).
 * Exits 0 when every check held, 1 otherwise (with the history and the kept directory).
 */
import { parseArgs } from 'node:util';
import { FAULT_KINDS, type FaultKind, SAFE_KINDS, type SoakOptions } from './plan.ts';
import { runSoak } from './soak.ts';

function parseFaults(text: string | undefined): FaultKind[] {
  if (text === undefined) return [...SAFE_KINDS];
  if (text === 'all') return [...FAULT_KINDS];
  if (text === 'none') return [];
  const kinds = text.split(',').map((k) => k.trim());
  for (const k of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(k))
      throw new TypeError(`unknown fault kind ${k}; known: ${FAULT_KINDS.join(', ')}, all, none`);
  }
  return kinds as FaultKind[];
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    duration: { type: 'string' },
    clients: { type: 'string' },
    faults: { type: 'string' },
    'append-every': { type: 'string' },
    'fault-rate': { type: 'string' },
    settle: { type: 'string' },
    keep: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  strict: true,
});

const number = (text: string | undefined, fallback: number, name: string): number => {
  const n = text === undefined ? fallback : Number(text);
  if (!Number.isFinite(n) || n < 0) throw new TypeError(`--${name} must be a number`);
  return n;
};

const options: SoakOptions = {
  seed: Math.floor(number(values.seed, Math.floor(Math.random() * 2 ** 31), 'seed')),
  durationMs: number(values.duration, 60, 'duration') * 1000,
  clients: Math.max(1, Math.floor(number(values.clients, 12, 'clients'))),
  faults: parseFaults(values.faults),
  appendEveryMs: number(values['append-every'], 300, 'append-every'),
  faultRate: number(values['fault-rate'], 1, 'fault-rate'),
  settleMs: number(values.settle, 90, 'settle') * 1000,
};

const report = await runSoak(
  options,
  values.quiet ? () => {} : (line) => console.log(line),
  values.keep === true,
);
const summary = [
  `soak ${report.ok ? 'PASSED' : 'FAILED'}: seed ${options.seed}, ${options.durationMs / 1000} s of faults, ${options.clients} clients, ${(report.elapsedMs / 1000).toFixed(0)} s in all`,
  `faults injected: ${JSON.stringify(report.injected)}`,
  `appends resolved ${report.appended}, acknowledged ${report.acknowledged}, refused ${JSON.stringify(report.refusedAppends)}; server holds ${report.serverEvents} events; ${report.replicas} replicas checked`,
  `replicas settled ${(report.settleTookMs / 1000).toFixed(1)} s after appends stopped`,
  `last errors still shown by replicas: ${JSON.stringify(report.lastErrors)}`,
];
console.log(summary.join('\n'));
if (!report.ok) {
  if (values.quiet) console.log(report.history.join('\n'));
  console.log(`failures:\n  ${report.failures.join('\n  ')}`);
  console.log(`replay: ${report.replay}`);
}
if (report.dir !== undefined) console.log(`kept: ${report.dir} (history.txt, journals, dumps)`);
process.exit(report.ok ? 0 : 1);
