/** The main-thread side, re-exported by src/index.ts. */
export { type ConnectedStore, type ConnectOptions, connectStore } from './connect.ts';
export { type PeekStateOptions, peekState } from './peek.ts';
export type { ClosedReason, HostMode, HostStatus } from './protocol.ts';
export { hasSharedWorker, startWorker, type WorkerMode } from './shared-worker-quirks.ts';
