import type { Task } from '../boot/task.js';

// Tells the platform the instance is up, where the platform expects it (Azure: the wireserver
// health report; without it the VM is marked failed). After the launch keys are in place, so
// "ready" means a user can log in; attempted even if that failed, since a VM marked failed is
// worse than one whose key can be fixed.

export const reportReadyTask: Task = {
  name: 'report-ready',
  phase: 'network',
  ifMetadata: true,
  after: ['authorized-keys'],

  // Only where imprint asks the platform anyway: this task alone does not start a network phase.
  disabledBecause: (config) => (config.authorizedKeys.enabled || config.productCodes.expected.length > 0 ? null : 'no other network task asks the platform'),

  async plan(ctx) {
    return ctx.facts.metadata?.reportReady ? [`would report ready to ${ctx.facts.metadata.source}`] : [];
  },

  async run(ctx, rec) {
    const ready = ctx.facts.metadata?.reportReady;
    if (!ready) return 'skipped';
    rec.action(await ready());
    return undefined;
  },
};
