// Loaded by mocha before any test (.mocharc.yml `require`): nothing under test may reach the
// real metadata address from this machine's own network namespace. agent/os/http.ts refuses
// 169.254.169.254 and fd00:ec2::254 while this is set; the CLI helper passes it on to children.
process.env.IMPRINT_FORBID_METADATA_ADDRESS = '1';

export const mochaHooks = {
  beforeAll(): void {
    if (process.env.IMPRINT_FORBID_METADATA_ADDRESS !== '1') throw new Error('metadata address guard is not in place');
  },
};
