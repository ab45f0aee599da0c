// Checkpoint key names, mapped to timm's (our canonical names) by each family's table of names
// (models/<family>/keys.ts). timm checkpoints pass through after a check that every key is one the
// family knows; Hugging Face checkpoints are renamed, with separate query, key and value
// projections concatenated into timm's qkv (q, k, v along the output dimension, which is how timm
// splits it again).
import type { SafetensorsFile } from './safetensors';

export type TimmWeights = Map<string, { shape: number[]; data: Float32Array }>;
/**
 * How one timm-named tensor is made from the checkpoint's tensors (`from`, by checkpoint name):
 * its shape is known from the header alone, its values once `build` gets those tensors. A loader
 * that streams reads `from`, builds, uploads and drops, one tensor at a time.
 */
export interface Recipe { shape: number[]; from: string[]; build(get: (name: string) => Float32Array): Float32Array }
export type TimmRecipes = Map<string, Recipe>;
/** A parsed safetensors file, or tensors already in memory (by checkpoint name). */
export type TensorSource = SafetensorsFile | ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
export type Layout = 'timm' | 'huggingface';

/** A family's checkpoint names: timm's, and how Hugging Face's map onto them. */
export interface KeyMap {
  /** Every timm name the family can have. */
  timm: readonly RegExp[];
  /** Keys that hold no weights of ours (index buffers, poolers used only in pretraining). */
  ignored: RegExp;
  huggingface: {
    /** True for a Hugging Face checkpoint's names. */
    detect: RegExp;
    /** The model prefix (`vit.`, `swin.`), dropped before the rules apply. */
    prefix: RegExp;
    /** Hugging Face name (after the prefix) to timm name: String.replace patterns, or functions where an index shifts. */
    rules: readonly [RegExp, string | ((match: string, ...groups: string[]) => string)][];
    /** A separate query, key or value projection: the group `part` names which; `target` is timm's qkv name as a replacement pattern. */
    qkv: { pattern: RegExp; target: string };
    /** Rewrites the renamed tensors where a layout differs from timm's in more than names (in place). */
    fold?: (weights: TimmRecipes) => void;
  };
}

export function detectLayout(names: readonly string[], keys: KeyMap): Layout {
  return names.some((n) => keys.huggingface.detect.test(n)) ? 'huggingface' : 'timm';
}

const isFile = (s: TensorSource): s is SafetensorsFile => typeof (s as SafetensorsFile).names === 'function';

function listSome(names: string[]): string {
  return `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;
}

/**
 * All of a checkpoint's tensors under timm names, as float32. Throws, naming them, on keys it
 * cannot map (rather than dropping weights), on two keys mapping to one name, and on an
 * incomplete or inconsistent query / key / value triple.
 */
export function toTimmNames(source: TensorSource, keys: KeyMap): TimmWeights {
  const file = isFile(source) ? source : undefined;
  const shapes = file ? file.entries : (source as Exclude<TensorSource, SafetensorsFile>);
  const get = (n: string) => (file ? file.get(n) : (source as Exclude<TensorSource, SafetensorsFile>).get(n)!.data);
  const out: TimmWeights = new Map();
  for (const [name, r] of timmRecipes(shapes, keys)) out.set(name, { shape: r.shape, data: r.build(get) });
  return out;
}

/**
 * How each timm-named tensor is made from a checkpoint's tensors, known from names and shapes
 * alone (a header): everything toTimmNames refuses is refused here, before any tensor is read.
 */
export function timmRecipes(shapes: ReadonlyMap<string, { shape: readonly number[] }>, keys: KeyMap): TimmRecipes {
  const names = [...shapes.keys()].filter((n) => !keys.ignored.test(n));
  const layout = detectLayout(names, keys);
  const hf = keys.huggingface;

  const renamed = new Map<string, string>(); // timm name -> checkpoint name
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', string>>>();
  const unknown: string[] = [];
  const claim = (timm: string, from: string) => {
    const other = renamed.get(timm);
    if (other !== undefined) throw new Error(`checkpoint: ${other} and ${from} both map to ${timm}`);
    renamed.set(timm, from);
  };
  for (const n of names) {
    if (layout === 'timm') {
      if (keys.timm.some((re) => re.test(n))) claim(n, n);
      else unknown.push(n);
      continue;
    }
    const rest = n.replace(hf.prefix, '');
    const split = hf.qkv.pattern.exec(rest);
    if (split) {
      const part = split.groups!.part as 'query' | 'key' | 'value';
      const target = rest.replace(hf.qkv.pattern, hf.qkv.target);
      const parts = qkv.get(target) ?? {};
      if (parts[part] !== undefined) throw new Error(`checkpoint: ${parts[part]} and ${n} both map to the ${part} of ${target}`);
      qkv.set(target, { ...parts, [part]: n });
      continue;
    }
    const rule = hf.rules.find(([re]) => re.test(rest));
    if (rule) claim(typeof rule[1] === 'string' ? rest.replace(rule[0], rule[1]) : rest.replace(rule[0], rule[1]), n);
    else unknown.push(n);
  }
  if (unknown.length) throw new Error(`checkpoint: ${unknown.length} ${layout} key(s) with no timm equivalent: ${listSome(unknown)}`);

  const out: TimmRecipes = new Map();
  for (const [timm, from] of renamed) out.set(timm, { shape: [...shapes.get(from)!.shape], from: [from], build: (get) => get(from) });
  for (const [target, parts] of qkv) {
    const missing = (['query', 'key', 'value'] as const).filter((p) => parts[p] === undefined);
    if (missing.length) throw new Error(`checkpoint: ${target} needs query, key and value; missing ${missing.join(', ')}`);
    const from = [parts.query!, parts.key!, parts.value!];
    const [q, k, v] = from.map((n) => shapes.get(n)!.shape) as [readonly number[], readonly number[], readonly number[]];
    if (k.join() !== q.join() || v.join() !== q.join()) {
      throw new Error(`checkpoint: query, key and value of ${target} differ in shape ([${q}], [${k}], [${v}])`);
    }
    // Row-major [D, D] (or [D] for the bias) stacked along the first axis: plain concatenation.
    out.set(target, {
      shape: [3 * (q[0] ?? 0), ...q.slice(1)], from, build: (get) => {
        const parts = from.map(get);
        const data = new Float32Array(3 * parts[0]!.length);
        parts.forEach((p, i) => data.set(p, i * p.length));
        return data;
      },
    });
  }
  if (layout === 'huggingface') hf.fold?.(out);
  return out;
}
