/**
 * How the tests and benchmarks launch Chromium: Debian's build (browsers cannot be downloaded
 * here), with the flags it needs as root in a container and none of its background traffic.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  // Root in a container has no user namespace for the sandbox.
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;
