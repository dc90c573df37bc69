/**
 * One scenario action performed on a World: shared by the virtual-time property
 * (convergence-run.ts) and the one through the real server (test/server/convergence.property.test.ts),
 * which differ only in what a restart, a partition, a mid-run check and a pause mean there.
 */
import type { World } from './convergence-harness.ts';
import type { Action } from './convergence-scenario.ts';

export interface ActionVariant {
  restart(node: number, inflight: number): Promise<void>;
  /** The mask of nodes cut off, from the scenario's. */
  partitionMask(mask: number): number;
  check(node: number): Promise<void>;
  run(ms: number): Promise<unknown>;
}

export async function applyAction(
  world: World,
  action: Action,
  variant: ActionVariant,
): Promise<void> {
  world.log(JSON.stringify(action));
  switch (action.kind) {
    case 'append':
      await world.append(
        action.replica,
        `s${action.stream}`,
        action.count,
        action.mode,
        action.ids,
      );
      return;
    case 'retry':
      await world.retry(action.replica);
      return;
    case 'restart':
      await variant.restart(action.node, action.inflight);
      return;
    case 'kill':
      world.links[action.link]!.kill();
      return;
    case 'toggle':
      await world.toggle(world.links[action.link]!, action.end);
      return;
    case 'partition':
      world.partition(variant.partitionMask(action.mask));
      return;
    case 'heal':
      world.heal();
      return;
    case 'clock':
      world.nodes[action.replica]!.skew = action.skew;
      return;
    case 'check':
      await variant.check(action.node);
      return;
    case 'collide':
      if (action.a !== action.b) await world.collide(action.a, action.b, `s${action.stream}`);
      return;
    case 'run':
      await variant.run(action.ms);
      return;
    default: {
      const never: never = action;
      throw new Error(`unknown action ${JSON.stringify(never)}`);
    }
  }
}
