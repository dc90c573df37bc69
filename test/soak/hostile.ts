/**
 * Hostile writers for the soak: raw protocol clients (test/server/helpers.ts) with a valid write
 * token that send what issue 12 found the server accepting or mishandling. Each act says which
 * event ids must never be stored (checked at the end on the server and every replica).
 */
import { makeEvent } from '../server/events.ts';
import { ProtocolClient, RawClient } from '../server/helpers.ts';
import { toWire } from '../sync/wire.ts';
import { streamOf } from './plan.ts';

export type HostileKind = 'garbage' | 'dup-id' | 'dup-seq' | 'big-number' | 'oversized';

export interface HostileResult {
  kind: HostileKind;
  /** Ids the server must have refused: absent everywhere at the end. */
  mustBeAbsent: string[];
  /** What the server answered, for the history. */
  answers: string[];
  /** False when there was nothing to act on. */
  acted: boolean;
}

const ANSWER_MS = 5000;

function describe(m: { type: string; code?: unknown; to?: unknown }): string {
  return m.type === 'error' ? `error ${String(m.code)}` : `${m.type} ${String(m.to ?? '')}`;
}

async function answerOf(client: ProtocolClient): Promise<string> {
  const closed = client.raw.closed.then((c) => `closed ${c.code}`);
  const answer = client.raw
    .next((m) => m.type === 'ack' || m.type === 'error', ANSWER_MS)
    .then(describe, () => 'no answer');
  return Promise.race([answer, closed]);
}

/** Sends one events batch as wire text (optionally edited) and waits for ack, error or close. */
async function pushText(
  client: ProtocolClient,
  events: ReturnType<typeof makeEvent>[],
  edit: (text: string) => string = (t) => t,
): Promise<string> {
  const last = events[events.length - 1];
  const text = toWire({ type: 'events', from: 0, to: events.length, toId: last?.id, events });
  client.raw.ws.send(edit(text));
  return answerOf(client);
}

/**
 * One hostile act against `url` with `token`. `ackedIds` are events honest clients saw
 * acknowledged (for `dup-id`). Never throws: a failure to act is an answer in the history.
 */
export async function actHostile(
  kind: HostileKind,
  url: string,
  token: string,
  seed: number,
  ackedIds: readonly string[],
): Promise<HostileResult> {
  const result: HostileResult = { kind, mustBeAbsent: [], answers: [], acted: true };
  const random = streamOf(seed, 1);
  const tag = `${kind}-${seed}`;
  try {
    if (kind === 'garbage') {
      const frames = [
        'not json',
        '{"type":"events","from":0,"to":1,"events":5}',
        `${'['.repeat(5000)}${']'.repeat(5000)}`,
        '{"type":"ack","to":-1}',
      ];
      const frame = frames[Math.floor(random() * frames.length)] ?? 'not json';
      const raw = await RawClient.connect(url, { token });
      raw.send(frame);
      const closed = raw.closed.then((c) => `closed ${c.code}`);
      const error = raw.nextOfType('error', ANSWER_MS).then(describe, () => 'no answer');
      result.answers.push(await Promise.race([error, closed]));
      raw.close();
      return result;
    }
    const client = await ProtocolClient.connect(url, token);
    const replica = client.replica;
    const wall = Date.now();
    try {
      switch (kind) {
        case 'dup-seq': {
          const a = makeEvent({ replica, seq: 1, id: `${tag}-a`, wall, data: { copy: 'a' } });
          const b = makeEvent({ replica, seq: 1, id: `${tag}-b`, wall, data: { copy: 'b' } });
          result.mustBeAbsent.push(a.id, b.id);
          result.answers.push(await pushText(client, [a, b]));
          break;
        }
        case 'dup-id': {
          const id = ackedIds[Math.floor(random() * ackedIds.length)];
          if (id === undefined) {
            result.answers.push('skipped: nothing acknowledged yet');
            result.acted = false;
            break;
          }
          const e = makeEvent({ replica, seq: 1, id, wall, data: { hostile: tag } });
          result.answers.push(`${id}: ${await pushText(client, [e])}`);
          break;
        }
        case 'big-number': {
          const e = makeEvent({ replica, seq: 1, id: `${tag}-big`, wall, data: { v: '__BIG__' } });
          result.mustBeAbsent.push(e.id);
          result.answers.push(await pushText(client, [e], (t) => t.replace('"__BIG__"', '1e400')));
          break;
        }
        case 'oversized': {
          // Over the server's 512 KiB event limit but inside one message; then over 1 MiB.
          const size = random() < 0.5 ? 600 * 1024 : 1100 * 1024;
          const e = makeEvent({ replica, seq: 1, id: `${tag}-big`, wall, data: 'x'.repeat(size) });
          result.mustBeAbsent.push(e.id);
          result.answers.push(`${size} bytes: ${await pushText(client, [e])}`);
          break;
        }
        default: {
          const never: never = kind;
          throw new Error(`unknown hostile kind ${String(never)}`);
        }
      }
    } finally {
      client.close();
    }
  } catch (error) {
    result.answers.push(`failed to act: ${(error as Error).message}`);
    result.acted = false;
  }
  return result;
}
