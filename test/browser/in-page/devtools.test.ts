/**
 * src/devtools/panel.ts invariants 1–4 in real Chromium and Firefox: the panel on a store shows
 * the sync status, the latest events live (filtered, one event's fields on click, data as text
 * only), projections' states live and the conflicts, and unmount releases everything.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mountDevtools } from '../../../src/devtools/index.ts';
import {
  defineProjection,
  type EventStore,
  generateEncryptionKey,
  type LooseEvents,
  memoryStorage,
  memoryTransportPair,
  openStore,
} from '../../../src/index.ts';

const count = defineProjection<number, LooseEvents>({
  name: 'count',
  version: 1,
  initial: () => 0,
  apply: (n) => n + 1,
});

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const opened: EventStore[] = [];
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  document.body.replaceChildren();
});

async function open(name: string): Promise<EventStore> {
  const store = await openStore({ name, storage: memoryStorage(), projections: [count] });
  opened.push(store);
  return store;
}

describe('mountDevtools', () => {
  it('shows the status, live events with a filter and details, and a projection’s state', async () => {
    const store = await open('dev-a');
    await store.append('todo-1', {
      type: 'TodoAdded',
      data: { title: '<img src=x onerror=alert(1)>' },
    });
    const container = document.createElement('div');
    document.body.append(container);
    const unmount = mountDevtools(store, container, { projections: [count] });
    const root = container.querySelector('.chronicle-devtools')?.shadowRoot;
    expect(root).toBeTruthy();
    const rows = () => [...(root?.querySelectorAll('.events li') ?? [])] as HTMLElement[];
    await until(() => rows().length === 1, 'the stored event');
    expect(root?.querySelector('.status')?.textContent).toContain('sync: offline');

    await store.append('todo-2', [
      { type: 'TodoAdded', data: { title: 'Two' } },
      { type: 'TodoDone', data: {} },
    ]);
    await until(() => rows().length === 3, 'live events');
    expect(rows().map((r) => r.querySelector('.type')?.textContent)).toEqual([
      'TodoDone',
      'TodoAdded',
      'TodoAdded',
    ]);
    await until(
      () => root?.querySelector('[data-projection="count"]')?.textContent === '3',
      'the projection’s state',
    );
    expect(root?.querySelector('.tree')?.textContent).toBe('3');
    expect(root?.querySelector('h3')?.textContent).toBe('count (version 1)');

    const filter = root?.querySelector('input') as HTMLInputElement;
    filter.value = 'todo-1';
    filter.dispatchEvent(new Event('input'));
    expect(rows()).toHaveLength(1);
    rows()[0]?.click();
    const detail = root?.querySelector('.detail')?.textContent ?? '';
    expect(JSON.parse(detail)).toMatchObject({ stream: 'todo-1', type: 'TodoAdded' });
    // Invariant 2: the event's data is text, not markup.
    expect(root?.querySelector('img')).toBeNull();

    // Nothing synced: every own event is local only.
    filter.value = '';
    filter.dispatchEvent(new Event('input'));
    expect(rows().every((r) => r.querySelector('.sync')?.textContent === 'local only')).toBe(true);

    // A time window (local time): from an hour ahead holds none, until an hour ahead all.
    const local = (ms: number) => {
      const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
      return d.toISOString().slice(0, 19);
    };
    const [since, untilInput] = [
      ...(root?.querySelectorAll<HTMLInputElement>('input[type="datetime-local"]') ?? []),
    ];
    since!.value = local(Date.now() + 3_600_000);
    since!.dispatchEvent(new Event('input'));
    expect(rows()).toHaveLength(0);
    since!.value = '';
    untilInput!.value = local(Date.now() + 3_600_000);
    untilInput!.dispatchEvent(new Event('input'));
    expect(rows()).toHaveLength(3);
    untilInput!.value = local(Date.now() - 3_600_000);
    untilInput!.dispatchEvent(new Event('input'));
    expect(rows()).toHaveLength(0);
    untilInput!.value = '';
    untilInput!.dispatchEvent(new Event('input'));

    // Time travel in the panel matches state(p, { at }).
    const [first] = await store.read({ limit: 1 });
    const at = root?.querySelector('input[aria-label="State of count at"]') as HTMLInputElement;
    at.value = first?.id ?? '';
    (at.nextElementSibling as HTMLButtonElement).click();
    const then = root?.querySelector<HTMLElement>('[data-then="count"]');
    await until(() => then?.dataset.result === 'ok', 'the state then');
    expect(JSON.parse(then?.textContent ?? '')).toEqual(
      await store.state('count', { at: { eventId: first?.id ?? '' } }),
    );
    expect(then?.textContent).toBe('1');

    // The projection's version and snapshots.
    expect(root?.querySelector('[data-snapshots="count"]')?.textContent).toMatch(
      /^version 1 · a snapshot every \d+ events · none kept yet$/,
    );

    // Rebuild with progress.
    const progress = root?.querySelector<HTMLElement>('[data-rebuild="count"]');
    (progress?.previousElementSibling as HTMLButtonElement | null)?.click();
    await until(() => progress?.dataset.result === 'done', 'the rebuild');
    expect(progress?.textContent).toBe('Rebuilt: 3 of 3 events folded');

    unmount();
    expect(container.children).toHaveLength(0);
    // Invariant 3: nothing left listening (an append after is not an error, and adds nothing).
    await store.append('todo-3', { type: 'TodoAdded', data: { title: 'after' } });
  });

  it('tells the last snapshot a projection keeps', async () => {
    const often = defineProjection<number, LooseEvents>({
      name: 'often',
      version: 3,
      initial: () => 0,
      apply: (n) => n + 1,
      snapshotEvery: 2,
    });
    const store = await openStore({
      name: 'dev-snap',
      storage: memoryStorage(),
      projections: [often],
    });
    opened.push(store);
    for (let i = 0; i < 5; i++) await store.append(`s-${i}`, { type: 'A', data: i });
    expect(await store.state(often)).toBe(5);
    const container = document.createElement('div');
    document.body.append(container);
    const unmount = mountDevtools(store, container, { projections: [often] });
    const root = container.querySelector('.chronicle-devtools')?.shadowRoot;
    const line = () => root?.querySelector('[data-snapshots="often"]')?.textContent ?? '';
    await until(() => line().includes('last snapshot'), 'the snapshot line');
    const info = await store.inspect(often);
    const last = info.snapshots.at(-1)!;
    expect(line()).toBe(
      `version 3 · a snapshot every 2 events · last snapshot after ${last.events} events (position ${last.position}) · ${info.snapshots.length} kept`,
    );
    expect(last.events).toBeGreaterThanOrEqual(4);
    unmount();
  });

  it('checks a projection’s determinism, and reports a planted non-deterministic one', async () => {
    const noisy = defineProjection<number, LooseEvents>({
      name: 'noisy',
      version: 1,
      initial: () => 0,
      apply: (n) => n + Math.random(),
    });
    const store = await openStore({
      name: 'dev-det',
      storage: memoryStorage(),
      projections: [count, noisy],
    });
    opened.push(store);
    await store.append('s', [
      { type: 'A', data: 1 },
      { type: 'B', data: 2 },
    ]);
    const container = document.createElement('div');
    document.body.append(container);
    const unmount = mountDevtools(store, container, { projections: [count, noisy] });
    const root = container.querySelector('.chronicle-devtools')?.shadowRoot;
    const check = (name: string) => {
      const result = root?.querySelector<HTMLElement>(`[data-determinism="${name}"]`);
      (result?.previousElementSibling as HTMLButtonElement | null)?.click();
      return result;
    };
    const counted = check('count');
    await until(() => counted?.dataset.result === 'deterministic', 'count checked');
    expect(counted?.textContent).toContain('agree after each of 2 events');
    const planted = check('noisy');
    await until(() => planted?.dataset.result === 'differs', 'noisy checked');
    expect(planted?.textContent).toContain('after event #1');
    unmount();
  });

  it('holds thousands of events, loads older pages on demand, and draws only the rows in view', async () => {
    const store = await open('dev-many');
    for (let i = 0; i < 5; i++) {
      await store.append(
        `s-${i}`,
        Array.from({ length: 1000 }, (_, k) => ({ type: 'T', data: i * 1000 + k })),
      );
    }
    const container = document.createElement('div');
    document.body.append(container);
    const unmount = mountDevtools(store, container);
    const root = container.querySelector('.chronicle-devtools')?.shadowRoot;
    const counted = () => root?.querySelector('.count')?.textContent ?? '';
    await until(() => counted() === '1000 of 1000 events held', 'the latest page');
    const older = [...(root?.querySelectorAll('button') ?? [])].find((b) =>
      b.textContent?.startsWith('Load'),
    ) as HTMLButtonElement;
    for (let page = 2; page <= 5; page++) {
      older.click();
      await until(
        () => counted() === `${page * 1000} of ${page * 1000} events held`,
        `page ${page}`,
      );
    }
    // A full page may have more behind it: one more read finds none, and the button stops.
    older.click();
    await until(() => older.disabled, 'nothing older left');
    expect(counted()).toBe('5000 of 5000 events held');
    const drawn = () => root?.querySelectorAll('.events li').length ?? 0;
    expect(drawn()).toBeLessThan(60);
    const viewport = root?.querySelector('.viewport') as HTMLElement;
    viewport.scrollTop = viewport.scrollHeight;
    viewport.dispatchEvent(new Event('scroll'));
    const [oldest] = await store.read({ limit: 1 });
    await until(
      () => root?.querySelector(`.events li[data-event="${oldest?.id}"]`) !== null,
      'the oldest event drawn at the bottom',
    );
    expect(drawn()).toBeLessThan(60);
    unmount();
  });

  it('shows a state as a tree whose opened nodes stay open as the state changes', async () => {
    const nested = defineProjection<{ last: { deep: unknown } }, LooseEvents>({
      name: 'nested',
      version: 2,
      initial: () => ({ last: { deep: null } }),
      apply: (_s, e) => ({ last: { deep: e.data } }),
    });
    const store = await openStore({
      name: 'dev-tree',
      storage: memoryStorage(),
      projections: [nested],
    });
    opened.push(store);
    await store.append('s', { type: 'T', data: 'first' });
    const container = document.createElement('div');
    document.body.append(container);
    const unmount = mountDevtools(store, container, { projections: [nested] });
    const root = container.querySelector('.chronicle-devtools')?.shadowRoot;
    const tree = () => root?.querySelector('.tree');
    await until(() => tree()?.textContent?.includes('last: {1}') === true, 'the tree');
    // Not drawn until opened.
    expect(tree()?.textContent).not.toContain('first');
    const last = root?.querySelector<HTMLDetailsElement>('details[data-path="/last"]');
    if (last) last.open = true;
    await until(() => tree()?.textContent?.includes('deep: "first"') === true, 'opened');
    await store.append('s', { type: 'T', data: 'second' });
    await until(() => tree()?.textContent?.includes('deep: "second"') === true, 'still open');
    unmount();
  });

  it('lists the conflicts after two replicas appended to one stream at once', async () => {
    const a = await open('dev-b1');
    const b = await open('dev-b2');
    await a.append('card-1', { type: 'Renamed', data: { title: 'A' } });
    await b.append('card-1', { type: 'Renamed', data: { title: 'B' } });
    const container = document.createElement('div');
    document.body.append(container);
    const unmount = mountDevtools(a, container);
    const root = container.querySelector('.chronicle-devtools')?.shadowRoot;
    await until(
      () => root?.querySelector('.conflicts')?.textContent === 'No conflicts',
      'no conflict yet',
    );
    const [ta, tb] = memoryTransportPair();
    const la = a.sync.connect(ta);
    const lb = b.sync.connect(tb);
    await until(
      () => (root?.querySelector('.conflicts')?.textContent ?? '').startsWith('card-1 @1'),
      'the conflict listed',
    );
    await until(
      () => (root?.querySelector('.status')?.textContent ?? '').includes('sync: idle'),
      'the status following sync',
    );
    // The history keeps what the status went through, newest first.
    const history = [...(root?.querySelectorAll('.history li') ?? [])].map((li) => li.textContent);
    expect(history[0]).toContain('sync: idle');
    expect(history.at(-1)).toContain('sync: offline');
    // Each connection: its transport, its peer, its state.
    const connections = [...(root?.querySelectorAll('.connections li') ?? [])].map(
      (li) => li.textContent,
    );
    expect(connections).toEqual([expect.stringContaining(`memory · peer ${b.replicaId} · idle`)]);
    expect(root?.querySelector('.rejected')?.textContent).toBe('Nothing rejected');
    unmount();
    await la.close();
    await lb.close();
  });

  it('says when the store holds encrypted events it has no key for', async () => {
    const sealed = await openStore({
      name: 'dev-c1',
      storage: memoryStorage(),
      encryption: { key: generateEncryptionKey() },
    });
    opened.push(sealed);
    await sealed.append('card-1', { type: 'Renamed', data: { title: 'secret' } });
    const keyless = await open('dev-c2');
    const container = document.createElement('div');
    document.body.append(container);
    const unmount = mountDevtools(keyless, container);
    const root = container.querySelector('.chronicle-devtools')?.shadowRoot;
    const [ta, tb] = memoryTransportPair();
    const la = sealed.sync.connect(ta);
    const lb = keyless.sync.connect(tb);
    await until(
      () => (root?.querySelector('.status')?.textContent ?? '').includes('1 unreadable'),
      'the unreadable event told',
    );
    expect(root?.querySelector('.status')?.textContent).toContain('UNREADABLE');
    expect(root?.textContent).not.toContain('secret');
    unmount();
    await la.close();
    await lb.close();
  });
});
