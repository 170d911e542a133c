import { readFile } from 'node:fs/promises';
import { ConfigError, defaultConfig, parseConfig, type Config } from '../config.js';
import { ImprintError } from '../os/errors.js';
import { listTreeDir, readTreeText } from '../os/files.js';
import type { RootTree } from '../os/root.js';

export const CONFIG_PATH = '/etc/imprint/imprint.yaml';
/** Drop-ins, merged in name order after the main file: image builders never edit the conffile. */
export const DROP_IN_DIR = '/etc/imprint/imprint.yaml.d';

/** One file that went into the config, as read. */
export interface ConfigLayer {
  /** The path to show (host path with --root, as errors name it). */
  file: string;
  text: string;
}

export interface LoadedConfig {
  config: Config;
  /** The files applied, in order (empty: built-in defaults). */
  layers: ConfigLayer[];
}

/** The files that make the config, in order, as read (not validated). */
export async function readConfigLayers(root: RootTree, explicit?: string): Promise<ConfigLayer[]> {
  if (explicit !== undefined) {
    try {
      return [{ file: explicit, text: await readFile(explicit, 'utf8') }];
    } catch (err) {
      throw new ImprintError(`${explicit}: cannot read the config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'config');
    }
  }
  const layers: ConfigLayer[] = [];
  const main = await readTreeText(root, CONFIG_PATH);
  if (main !== null) layers.push({ file: root.path(CONFIG_PATH), text: main });
  for (const name of (await listTreeDir(root, DROP_IN_DIR)).filter((n) => n.endsWith('.yaml') && !n.startsWith('.'))) {
    const text = await readTreeText(root, `${DROP_IN_DIR}/${name}`);
    if (text !== null) layers.push({ file: root.path(`${DROP_IN_DIR}/${name}`), text });
  }
  return layers;
}

/**
 * The config named by --config (alone), else the tree's own file and then its drop-ins, else
 * the defaults. Every file is validated; the problems of all of them are reported together.
 */
export async function loadConfigLayers(root: RootTree, explicit?: string): Promise<LoadedConfig> {
  const layers = await readConfigLayers(root, explicit);
  let config = defaultConfig();
  const problems: string[] = [];
  for (const layer of layers) {
    try {
      config = parseConfig(layer.text, layer.file, config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (layers[0]) config.source = layers[0].file;
  return { config, layers };
}

export async function loadConfig(root: RootTree, explicit?: string): Promise<Config> {
  return (await loadConfigLayers(root, explicit)).config;
}
