// Loaded by mocha before any test (.mocharc.yml `require`): nothing under test may reach the
// real metadata address from this machine's own network namespace. agent/os/http.ts refuses
// 169.254.169.254 and fd00:ec2::254 while this is set; the CLI helper passes it on to children.
process.env.IMPRINT_FORBID_METADATA_ADDRESS = '1';

export const mochaHooks = {
  beforeAll(): void {
    if (process.env.IMPRINT_FORBID_METADATA_ADDRESS !== '1') throw new Error('metadata address guard is not in place');
  },
  afterEach(): void {
    // Reported against the test during which it happened (or the next one to end).
    if (strays.length > 0) throw new Error(`the code under test left ${strays.splice(0).join('\n')}`);
  },
  afterAll(): void {
    if (strays.length > 0) throw new Error(`the code under test left ${strays.splice(0).join('\n')}`);
  },
};

// No unhandled rejection or stray exception anywhere in a test process: Node would otherwise
// only warn, or end the run with mocha's report cut short. Each one is remembered and fails the
// run in afterAll, named. (The CLI's child runs are checked by their exit status: the CLI exits
// 70 on an internal error, and the integration tests assert the status.)
const strays: string[] = [];
process.on('unhandledRejection', (reason) => {
  strays.push(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
});
process.on('uncaughtExceptionMonitor', (err) => {
  strays.push(`uncaught exception: ${err.stack ?? err.message}`);
});

export function strayFailures(): readonly string[] {
  return strays;
}
