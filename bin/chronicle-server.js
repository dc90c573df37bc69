#!/usr/bin/env node
// The `chronicle-server` command. The package ships TypeScript sources, so this shim registers
// tsx's loader and runs src/server/cli.ts (equivalent to `npx tsx src/server/cli.ts`).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/server/cli.ts');
await main(process.argv.slice(2), process.env);
