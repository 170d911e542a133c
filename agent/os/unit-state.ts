import { readFile } from 'node:fs/promises';
import { run } from './exec.js';

// What systemd says about imprint.service (`imprint status` on a live system), and whether a
// boot's process still runs. Read-only.

export interface UnitState {
  /** active, activating, inactive, failed... */
  activeState: string;
  subState: string;
  /** success, exit-code, timeout... */
  result: string;
  /** "no" when a Condition (imprint=disabled on the kernel command line) kept it from running. */
  conditionResult: string;
  /** enabled, disabled, masked... */
  unitFileState: string;
}

/** null when systemctl is missing or not talking to a running systemd (a container, a chroot). */
export async function imprintUnitState(): Promise<UnitState | null> {
  const props = ['ActiveState', 'SubState', 'Result', 'ConditionResult', 'UnitFileState'];
  const answer = await run('systemctl', ['show', 'imprint.service', ...props.map((p) => `--property=${p}`)], { timeoutMs: 10_000 }).catch(() => null);
  if (answer === null || answer.code !== 0) return null;
  const values = new Map(answer.stdout.split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  return {
    activeState: values.get('ActiveState') ?? '',
    subState: values.get('SubState') ?? '',
    result: values.get('Result') ?? '',
    conditionResult: values.get('ConditionResult') ?? '',
    unitFileState: values.get('UnitFileState') ?? '',
  };
}

/** Whether PID is a running `imprint boot` (not a process that got its number since). */
export async function bootProcessRuns(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline === null) return false;
  const args = cmdline.split('\0');
  return args.some((a) => /imprint/.test(a)) && args.includes('boot');
}
