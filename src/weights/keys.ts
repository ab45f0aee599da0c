// Checkpoint key names, mapped in one place to timm's (our canonical names). timm checkpoints
// pass through; Hugging Face ViTForImageClassification / DeiT checkpoints are renamed, with the
// separate query, key and value projections concatenated into timm's qkv (q, k, v along the
// output dimension).
import type { HostWeights } from '../models/vit';
import type { SafetensorsFile } from './safetensors';

const HF_BLOCK: [RegExp, string][] = [
  [/^layernorm_before\.(weight|bias)$/, 'norm1.$1'],
  [/^attention\.output\.dense\.(weight|bias)$/, 'attn.proj.$1'],
  [/^layernorm_after\.(weight|bias)$/, 'norm2.$1'],
  [/^intermediate\.dense\.(weight|bias)$/, 'mlp.fc1.$1'],
  [/^output\.dense\.(weight|bias)$/, 'mlp.fc2.$1'],
];

const HF_TOP: [RegExp, string][] = [
  [/^embeddings\.cls_token$/, 'cls_token'],
  [/^embeddings\.distillation_token$/, 'dist_token'],
  [/^embeddings\.position_embeddings$/, 'pos_embed'],
  [/^embeddings\.patch_embeddings\.projection\.(weight|bias)$/, 'patch_embed.proj.$1'],
  [/^layernorm\.(weight|bias)$/, 'norm.$1'],
];

const HF_HEADS: [RegExp, string][] = [
  [/^(classifier|cls_classifier)\.(weight|bias)$/, 'head.$2'],
  [/^distillation_classifier\.(weight|bias)$/, 'head_dist.$1'],
];

/** Keys that carry no weights of ours (buffers, the HF pooler used only for pretraining). */
const IGNORED = /(^|\.)position_ids$|^(vit|deit)\.pooler\./;

export function isHuggingFace(names: readonly string[]): boolean {
  return names.some((n) => /^(vit|deit)\.(embeddings|encoder)\./.test(n));
}

export function toTimmNames(file: SafetensorsFile): HostWeights {
  const names = file.names().filter((n) => !IGNORED.test(n));
  const out: HostWeights = new Map();
  const tensor = (n: string) => ({ shape: file.entries.get(n)!.shape, data: file.get(n) });
  if (!isHuggingFace(names)) {
    for (const n of names) out.set(n, tensor(n));
    return out;
  }
  const unknown: string[] = [];
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', string>>>();
  for (const n of names) {
    const m = /^(?:vit|deit)\.(.*)$/.exec(n);
    const rest = m?.[1];
    const block = rest && /^encoder\.layer\.(\d+)\.(.*)$/.exec(rest);
    if (block) {
      const [, i, sub] = block as unknown as [string, string, string];
      const split = /^attention\.attention\.(query|key|value)\.(weight|bias)$/.exec(sub);
      if (split) {
        const key = `blocks.${i}.attn.qkv.${split[2]}`;
        qkv.set(key, { ...qkv.get(key), [split[1] as 'query']: n });
        continue;
      }
      const rule = HF_BLOCK.find(([re]) => re.test(sub));
      if (rule) out.set(`blocks.${i}.${sub.replace(rule[0], rule[1])}`, tensor(n));
      else unknown.push(n);
      continue;
    }
    const rules = rest !== undefined ? HF_TOP : HF_HEADS;
    const subject = rest ?? n;
    const rule = rules.find(([re]) => re.test(subject));
    if (rule) out.set(subject.replace(rule[0], rule[1]), tensor(n));
    else unknown.push(n);
  }
  if (unknown.length) {
    throw new Error(`checkpoint: keys with no timm equivalent: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`);
  }
  for (const [key, parts] of qkv) {
    const missing = (['query', 'key', 'value'] as const).filter((p) => !parts[p]);
    if (missing.length) throw new Error(`checkpoint: ${key} needs query, key and value; missing ${missing.join(', ')}`);
    const pieces = [parts.query!, parts.key!, parts.value!].map(tensor);
    const first = pieces[0]!;
    if (pieces.some((p) => p.shape.join() !== first.shape.join())) throw new Error(`checkpoint: query, key and value of ${key} differ in shape`);
    const data = new Float32Array(3 * pieces[0]!.data.length);
    pieces.forEach((p, i) => data.set(p.data, i * p.data.length));
    out.set(key, { shape: [3 * first.shape[0]!, ...first.shape.slice(1)], data });
  }
  return out;
}
