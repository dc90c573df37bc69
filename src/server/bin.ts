#!/usr/bin/env node
/**
 * The `chronicle-server` command installed by the package (package.json `bin`): plain Node runs
 * its compiled JavaScript (dist/src/server/bin.js). cli.ts parses the flags and runs the server.
 */
import { runCli } from './cli.ts';

runCli();
