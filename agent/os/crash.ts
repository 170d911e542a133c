// Test hook for crash-safety tests: IMPRINT_TEST_CRASH_AT=N makes the process SIGKILL itself
// at the Nth durable step (a rename, an unlink, a mutating command). Killing ourselves is the
// only honest way to prove every step is resumable; the hook is inert unless the variable is set.
const crashAt = Number.parseInt(process.env.IMPRINT_TEST_CRASH_AT ?? '', 10);
let steps = 0;

export function crashPoint(_label: string, alsoKill?: () => void): void {
  if (!Number.isFinite(crashAt)) return;
  steps += 1;
  if (steps !== crashAt) return;
  alsoKill?.(); // a child doing the work dies with us, as on a power cut
  process.kill(process.pid, 'SIGKILL');
}

/** How many crash points this process has passed (reported so tests know when to stop). */
export function crashPointsPassed(): number {
  return steps;
}
