// Independent checks of `imprint audit`'s machine outputs, without npm dependencies:
//  - validateSchema: a JSON Schema (2020-12) validator for the keywords the published schema
//    uses; an unknown keyword is an error, so the schema cannot grow past what is checked;
//  - parseXml: a strict XML 1.0 well-formedness parser (elements, attributes, text, the
//    predefined and numeric entities, comments, the XML declaration) into a small tree.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json } | boolean;

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', '$defs']);
const KEYWORDS = new Set(['type', 'enum', 'const', 'required', 'properties', 'additionalProperties', 'items', 'minItems', 'minimum', 'minLength', 'maxLength', 'pattern', '$ref', 'oneOf', 'maximum']);

function typeOf(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(v: Json, t: string): boolean {
  const actual = typeOf(v);
  return actual === t || (t === 'number' && actual === 'integer');
}

function deepEqual(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every violation of `schema` by `value`, as "path: problem" strings ([] when valid). */
export function validateSchema(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  const resolve = (ref: string): Schema => {
    const m = /^#\/\$defs\/([A-Za-z0-9_-]+)$/.exec(ref);
    const defs = typeof root === 'object' ? (root.$defs as { [k: string]: Schema } | undefined) : undefined;
    const target = m ? defs?.[m[1] as string] : undefined;
    if (target === undefined) throw new Error(`schema: unresolvable $ref ${ref}`);
    return target;
  };
  const visit = (schema: Schema, v: Json, at: string): void => {
    if (schema === true) return;
    if (schema === false) {
      errors.push(`${at}: not allowed`);
      return;
    }
    for (const k of Object.keys(schema)) {
      if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`schema: keyword ${k} is not supported by this validator`);
    }
    if (typeof schema.$ref === 'string') visit(resolve(schema.$ref), v, at);
    if (Array.isArray(schema.oneOf)) {
      // Each alternative on its own, against the same $defs: exactly one may hold.
      const defs = typeof root === 'object' ? root.$defs : undefined;
      const verdicts = (schema.oneOf as Schema[]).map((alt) => validateSchema(typeof alt === 'boolean' ? alt : { ...(defs === undefined ? {} : { $defs: defs }), ...alt }, v));
      const holding = verdicts.filter((e) => e.length === 0).length;
      if (holding !== 1) errors.push(`${at}: ${holding === 0 ? `matches none of oneOf (${verdicts.map((e) => e[0]).join('; ')})` : `matches ${holding} of oneOf`}`);
    }
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((t) => typeMatches(v, t))) {
        errors.push(`${at}: expected ${types.join(' or ')}, got ${typeOf(v)}`);
        return;
      }
    }
    if (schema.const !== undefined && !deepEqual(schema.const, v)) errors.push(`${at}: expected ${JSON.stringify(schema.const)}`);
    if (Array.isArray(schema.enum) && !schema.enum.some((e) => deepEqual(e, v))) errors.push(`${at}: ${JSON.stringify(v)} is not one of ${JSON.stringify(schema.enum)}`);
    if (typeof v === 'string') {
      const length = Array.from(v).length;
      if (typeof schema.minLength === 'number' && length < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
      if (typeof schema.maxLength === 'number' && length > schema.maxLength) errors.push(`${at}: longer than ${schema.maxLength}`);
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(v)) errors.push(`${at}: ${JSON.stringify(v.slice(0, 60))} does not match ${schema.pattern}`);
    }
    if (typeof v === 'number' && typeof schema.minimum === 'number' && v < schema.minimum) errors.push(`${at}: below ${schema.minimum}`);
    if (typeof v === 'number' && typeof schema.maximum === 'number' && v > schema.maximum) errors.push(`${at}: above ${schema.maximum}`);
    if (Array.isArray(v)) {
      if (typeof schema.minItems === 'number' && v.length < schema.minItems) errors.push(`${at}: fewer than ${schema.minItems} items`);
      if (schema.items !== undefined) v.forEach((item, i) => visit(schema.items as Schema, item, `${at}[${i}]`));
    }
    if (typeOf(v) === 'object') {
      const obj = v as { [k: string]: Json };
      for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in obj)) errors.push(`${at}: missing ${r}`);
      const props = (schema.properties as { [k: string]: Schema } | undefined) ?? {};
      for (const [k, child] of Object.entries(obj)) {
        if (k in props) visit(props[k] as Schema, child, `${at}.${k}`);
        else if (schema.additionalProperties !== undefined) visit(schema.additionalProperties as Schema, child, `${at}.${k}`);
      }
    }
  };
  visit(root, value as Json, '$');
  return errors;
}

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (character data and CDATA directly inside it), entities decoded. */
  text: string;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]*/;

function decodeEntities(raw: string, where: string): string {
  if (raw.includes('<')) throw new Error(`xml: "<" in ${where}`);
  return raw.replace(/&([^;]*);?/g, (m, body: string) => {
    if (!m.endsWith(';')) throw new Error(`xml: unterminated entity in ${where}`);
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (body in named) return named[body] as string;
    const num = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(body);
    if (!num) throw new Error(`xml: unknown entity &${body}; in ${where}`);
    const cp = num[1] !== undefined ? Number.parseInt(num[1], 16) : Number.parseInt(num[2] as string, 10);
    if (!isXmlChar(cp)) throw new Error(`xml: character reference to a forbidden character in ${where}`);
    return String.fromCodePoint(cp);
  });
}

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Parses a whole document; throws on anything that is not well-formed. Returns the root element. */
export function parseXml(text: string): XmlElement {
  for (const ch of text) {
    if (!isXmlChar(ch.codePointAt(0) as number)) throw new Error(`xml: forbidden character U+${(ch.codePointAt(0) as number).toString(16)}`);
  }
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i] as string)) i += 1;
  };
  const skipMisc = (): void => {
    for (;;) {
      skipSpace();
      if (text.startsWith('<!--', i)) {
        const end = text.indexOf('-->', i + 4);
        if (end < 0) throw new Error('xml: unterminated comment');
        if (text.slice(i + 4, end).includes('--')) throw new Error('xml: "--" inside a comment');
        i = end + 3;
      } else if (text.startsWith('<?', i) && !text.startsWith('<?xml', i)) {
        const end = text.indexOf('?>', i);
        if (end < 0) throw new Error('xml: unterminated processing instruction');
        i = end + 2;
      } else return;
    }
  };
  if (text.startsWith('<?xml')) {
    const end = text.indexOf('?>');
    if (end < 0 || !/^<\?xml\s+version="1\.[0-9]"(\s+encoding="[A-Za-z0-9._-]+")?(\s+standalone="(yes|no)")?\s*\?>$/.test(text.slice(0, end + 2))) throw new Error('xml: bad XML declaration');
    i = end + 2;
  }
  const element = (): XmlElement => {
    if (text[i] !== '<') throw new Error(`xml: expected "<" at ${i}`);
    i += 1;
    const name = NAME.exec(text.slice(i))?.[0];
    if (!name) throw new Error(`xml: bad element name at ${i}`);
    i += name.length;
    const attributes: Record<string, string> = {};
    for (;;) {
      const before = i;
      skipSpace();
      if (text.startsWith('/>', i)) {
        i += 2;
        return { name, attributes, children: [], text: '' };
      }
      if (text[i] === '>') {
        i += 1;
        break;
      }
      if (i === before) throw new Error(`xml: expected a space before an attribute of <${name}> at ${i}`);
      const attr = NAME.exec(text.slice(i))?.[0];
      if (!attr) throw new Error(`xml: bad attribute name in <${name}> at ${i}`);
      i += attr.length;
      skipSpace();
      if (text[i] !== '=') throw new Error(`xml: "=" expected after ${attr}`);
      i += 1;
      skipSpace();
      const quote = text[i];
      if (quote !== '"' && quote !== "'") throw new Error(`xml: attribute ${attr} is not quoted`);
      const end = text.indexOf(quote, i + 1);
      if (end < 0) throw new Error(`xml: unterminated attribute ${attr}`);
      if (attr in attributes) throw new Error(`xml: duplicate attribute ${attr} in <${name}>`);
      attributes[attr] = decodeEntities(text.slice(i + 1, end), `attribute ${attr}`);
      i = end + 1;
    }
    const children: XmlElement[] = [];
    let own = '';
    for (;;) {
      const lt = text.indexOf('<', i);
      if (lt < 0) throw new Error(`xml: <${name}> is not closed`);
      const chunk = text.slice(i, lt);
      if (chunk.includes(']]>')) throw new Error('xml: "]]>" in character data');
      own += decodeEntities(chunk, `<${name}> text`);
      i = lt;
      if (text.startsWith('</', i)) {
        i += 2;
        if (!text.startsWith(name, i) || !/[\s>]/.test(text[i + name.length] ?? '')) throw new Error(`xml: </${text.slice(i, i + name.length + 5)}> does not close <${name}>`);
        i += name.length;
        skipSpace();
        if (text[i] !== '>') throw new Error(`xml: bad end tag of <${name}>`);
        i += 1;
        return { name, attributes, children, text: own };
      }
      if (text.startsWith('<![CDATA[', i)) {
        const end = text.indexOf(']]>', i);
        if (end < 0) throw new Error('xml: unterminated CDATA');
        own += text.slice(i + 9, end);
        i = end + 3;
        continue;
      }
      if (text.startsWith('<!--', i)) {
        skipMisc();
        continue;
      }
      children.push(element());
    }
  };
  skipMisc();
  const rootElement = element();
  skipMisc();
  if (i !== text.length) throw new Error(`xml: content after the root element at ${i}`);
  return rootElement;
}
