/** What the React test page exposes to page.evaluate (see page.ts), typed for the Node side. */

export type StoreKind = 'memory' | 'worker';

export interface ReactPageApi {
  /** Opens the store: in the page (openStore, memory storage) or in a worker (connectStore). */
  open(kind: StoreKind, db: string): Promise<void>;
  /** Renders the app (again, with these props when mounted). */
  render(props: { todoId: string }): void;
  unmount(): void;
  /** `n` appends at once, each its own call (not one batch). */
  burst(n: number): Promise<void>;
  addTodo(id: string, title: string): Promise<void>;
  doneTodo(id: string): Promise<void>;
  syncTo(url: string): void;
  /** Render-function calls per component. */
  renders: Record<string, number>;
  /** States the store's watch delivered to the hooks, per projection. */
  emitted: Record<string, number>;
  /** Watch subscriptions the hooks hold now. */
  watching: number;
  /** Watch subscriptions the hooks made since the page loaded. */
  subscribed: number;
  /** Listeners the worker holds for this page (worker kind only). */
  workerListeners(): Promise<number>;
  /** The current state, read without any hook. */
  count(): Promise<number>;
}

export interface ReactPageWindow {
  app: ReactPageApi;
}
