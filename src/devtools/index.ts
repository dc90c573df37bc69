/**
 * `@chronicle-es/store/devtools`: a panel on a store for development (issue 15). Import it
 * dynamically behind a development flag so that production bundles leave it out.
 *
 * @example
 * const { mountDevtools } = await import('@chronicle-es/store/devtools');
 * const unmount = mountDevtools(store, document.getElementById('devtools')!, { projections: [board] });
 */
export { checkDeterminism, type DeterminismResult } from './determinism.ts';
export { type DevtoolsOptions, MAX_EVENTS, mountDevtools, PAGE } from './panel.ts';
