// Debian's chromium for the browser tests, driven by playwright-core.
export const CHROMIUM = process.env.NETPULSE_CHROMIUM ?? '/usr/bin/chromium';
// Headless, and nothing that reaches for the network (the machine has none).
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
