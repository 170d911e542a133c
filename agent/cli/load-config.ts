import { readFile } from 'node:fs/promises';
import { defaultConfig, parseConfig, type Config } from '../config.js';
import { ImprintError } from '../os/errors.js';
import { readTreeText } from '../os/files.js';
import type { RootTree } from '../os/root.js';

export const CONFIG_PATH = '/etc/imprint/imprint.yaml';

/** The config named by --config, else the tree's own, else the defaults. */
export async function loadConfig(root: RootTree, explicit?: string): Promise<Config> {
  if (explicit !== undefined) {
    let text: string;
    try {
      text = await readFile(explicit, 'utf8');
    } catch (err) {
      throw new ImprintError(`${explicit}: cannot read the config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'config');
    }
    return parseConfig(text, explicit);
  }
  const text = await readTreeText(root, CONFIG_PATH);
  return text === null ? defaultConfig() : parseConfig(text, root.path(CONFIG_PATH));
}
