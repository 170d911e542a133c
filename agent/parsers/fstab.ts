// /etc/fstab, only as far as clear-swap needs it: the swap areas a system names (fstab(5):
// whitespace-separated fields, spaces in names written as \040, '#' starts a comment line).

/** The first field of every swap line: a path, or a tag (UUID=, LABEL=, PARTUUID=, PARTLABEL=). */
export function fstabSwapSpecs(text: string): string[] {
  const specs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    if (fields.length < 3 || fields[2] !== 'swap') continue;
    specs.push((fields[0] as string).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return specs;
}

export type SwapSpec = { tag: 'UUID' | 'LABEL' | 'PARTUUID' | 'PARTLABEL'; value: string } | { path: string };

export function parseSwapSpec(spec: string): SwapSpec | null {
  const tagged = /^(UUID|LABEL|PARTUUID|PARTLABEL)=(.+)$/.exec(spec);
  if (tagged) return { tag: tagged[1] as 'UUID' | 'LABEL' | 'PARTUUID' | 'PARTLABEL', value: (tagged[2] as string).replace(/^"(.*)"$/, '$1') };
  return spec.startsWith('/') ? { path: spec } : null;
}
