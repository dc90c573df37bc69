/**
 * The public-API convergence property (convergence.public.property.test.ts) with every replica
 * encrypting (issue 16): the same random stars and meshes, partitions, duplicate, dropped and
 * reordered delivery, restarts and id collisions, on sealed events. What replicas converge on is
 * the sealed log; what they read and fold is the opened one, and both must agree everywhere.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { generateEncryptionKey } from '../../src/index.ts';
import { runEncryptedScenario } from './convergence-run.ts';
import { propertyParameters, scenarioArb } from './convergence-scenario.ts';

describe('convergence with end-to-end encryption (seeded)', () => {
  const parameters = propertyParameters(30);
  const scenarios = scenarioArb({
    minReplicas: 2,
    maxReplicas: 4,
    maxActions: 30,
    topologies: ['star', 'mesh', 'mixed'],
  });
  const encryptionKey = generateEncryptionKey();
  it.each([
    ['', undefined],
    [', stream names and types hidden', generateEncryptionKey()],
  ])(
    'encrypted replicas in a star, a mesh or both converge on one log, one order, one state%s',
    async (_label, names) => {
      await fc.assert(
        fc.asyncProperty(scenarios, runEncryptedScenario(encryptionKey, names)),
        parameters,
      );
    },
    60_000 + parameters.numRuns * 3_000,
  );
});
