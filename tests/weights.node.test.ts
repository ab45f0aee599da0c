// Checkpoint loading without a GPU: the safetensors reader and writer, key mapping from timm and
// Hugging Face layouts, config inference and checking, and the JSON config dialects.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { PRESETS, type ViTConfig } from '../src/models/vit/config';
import { vit } from '../src/models/vit/family';
import { parseConfig, parseConfigJson } from '../src/weights/config';
import { checkWeights } from '../src/graph/model';
import { inferConfig, VIT_KEYS } from '../src/models/vit/keys';
import { detectLayout, toTimmNames, type TimmWeights } from '../src/weights/keys';
import { parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';
import { relL2 } from './helpers/compare';
import { vitForwardRef } from './reference/vit';

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

/** A file from a header object and raw data bytes, written by hand (no padding). */
function file(header: object, data: Uint8Array | number[] = []): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Little-endian u16 values as bytes. */
function u16(...xs: number[]): Uint8Array {
  const out = new Uint8Array(2 * xs.length);
  xs.forEach((x, i) => new DataView(out.buffer).setUint16(2 * i, x, true));
  return out;
}

function withHeaderLength(n: bigint, total = 16): Uint8Array {
  const b = new Uint8Array(total);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

/** -1 when a and b hold the same bits, else the first index that differs (or -2 for lengths). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return -2;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

function expectSameTensors(a: TimmWeights, b: TimmWeights): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect(u.shape, name).toEqual(t.shape);
    expect(firstDifference(t.data, u.data), name).toBe(-1);
  }
}

/** Deterministic weights of the right shapes for a config. */
function syntheticWeights(config: ViTConfig): TimmWeights {
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  return new Map(vit.parameterShapes(config).map(([name, shape]) => [name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand) }]));
}

/**
 * timm-named tensors renamed to Hugging Face's layout, qkv split into query, key and value: the
 * inverse of the mapping under test, written out independently. `prefix` is 'vit' or 'deit'.
 */
function toHuggingFace(weights: TimmWeights, prefix: 'vit' | 'deit'): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const distilled = weights.has('head_dist.weight');
  for (const [name, t] of weights) {
    const block = /^blocks\.(\d+)\.(.*)\.(weight|bias)$/.exec(name);
    if (block) {
      const [, i, sub, kind] = block as unknown as [string, string, string, string];
      const layer = `${prefix}.encoder.layer.${i}`;
      if (sub === 'attn.qkv') {
        const n = t.data.length / 3;
        const shape = [t.shape[0]! / 3, ...t.shape.slice(1)];
        ['query', 'key', 'value'].forEach((part, j) => out.set(`${layer}.attention.attention.${part}.${kind}`, { shape, data: t.data.slice(j * n, (j + 1) * n) }));
        continue;
      }
      const hf = { norm1: 'layernorm_before', 'attn.proj': 'attention.output.dense', norm2: 'layernorm_after', 'mlp.fc1': 'intermediate.dense', 'mlp.fc2': 'output.dense' }[sub];
      out.set(`${layer}.${hf}.${kind}`, t);
      continue;
    }
    const top: Record<string, string> = {
      cls_token: `${prefix}.embeddings.cls_token`,
      dist_token: `${prefix}.embeddings.distillation_token`,
      pos_embed: `${prefix}.embeddings.position_embeddings`,
      'patch_embed.proj.weight': `${prefix}.embeddings.patch_embeddings.projection.weight`,
      'patch_embed.proj.bias': `${prefix}.embeddings.patch_embeddings.projection.bias`,
      'norm.weight': `${prefix}.layernorm.weight`,
      'norm.bias': `${prefix}.layernorm.bias`,
      'head.weight': distilled ? 'cls_classifier.weight' : 'classifier.weight',
      'head.bias': distilled ? 'cls_classifier.bias' : 'classifier.bias',
      'head_dist.weight': 'distillation_classifier.weight',
      'head_dist.bias': 'distillation_classifier.bias',
    };
    out.set(top[name]!, t);
  }
  return out;
}

/**
 * A timm-named DINOv2 backbone renamed as transformers' Dinov2Model stores it (modeling_dinov2.py:
 * `embeddings.mask_token`, `encoder.layer.N.norm1`, `attention.attention.query`,
 * `layer_scale1.lambda1`, `mlp.fc1`, `layernorm`), written out independently of the mapping.
 */
function toDinov2HuggingFace(weights: TimmWeights, prefix: '' | 'dinov2.'): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of weights) {
    let m: RegExpExecArray | null;
    if ((m = /^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$/.exec(name))) {
      const n = t.data.length / 3;
      const shape = [t.shape[0]! / 3, ...t.shape.slice(1)];
      ['query', 'key', 'value'].forEach((part, j) => out.set(`${prefix}encoder.layer.${m![1]}.attention.attention.${part}.${m![2]}`, { shape, data: t.data.slice(j * n, (j + 1) * n) }));
    } else if ((m = /^blocks\.(\d+)\.attn\.proj\.(weight|bias)$/.exec(name))) out.set(`${prefix}encoder.layer.${m[1]}.attention.output.dense.${m[2]}`, t);
    else if ((m = /^blocks\.(\d+)\.ls([12])\.gamma$/.exec(name))) out.set(`${prefix}encoder.layer.${m[1]}.layer_scale${m[2]}.lambda1`, t);
    else if ((m = /^blocks\.(\d+)\.(norm[12]|mlp\.fc[12])\.(weight|bias)$/.exec(name))) out.set(`${prefix}encoder.layer.${m[1]}.${m[2]}.${m[3]}`, t);
    else {
      const top: Record<string, string> = {
        cls_token: 'embeddings.cls_token', pos_embed: 'embeddings.position_embeddings',
        'patch_embed.proj.weight': 'embeddings.patch_embeddings.projection.weight', 'patch_embed.proj.bias': 'embeddings.patch_embeddings.projection.bias',
        'norm.weight': 'layernorm.weight', 'norm.bias': 'layernorm.bias',
      };
      if (!top[name]) throw new Error(`no Dinov2Model name for ${name}`);
      out.set(`${prefix}${top[name]}`, t);
    }
  }
  const D = weights.get('cls_token')!.shape[2]!;
  out.set(`${prefix}embeddings.mask_token`, { shape: [1, D], data: new Float32Array(D) });
  return out;
}

const fixture = (dir: string, name: string) => ({
  weights: toTimmNames(parseSafetensors(readFileSync(root(`tests/fixtures/${dir}/${name}.safetensors`))), VIT_KEYS),
  json: JSON.parse(readFileSync(root(`tests/fixtures/${dir}/${name}.json`), 'utf8')) as Record<string, unknown>,
});

// The DeiT-tiny checkpoint (timm names): the demo's copy, else the shared data; missing is a failure.
let deitBytes: Uint8Array | undefined;
function deitTiny(): Uint8Array {
  if (deitBytes) return deitBytes;
  const candidates = ['public/models/deit-tiny/model.safetensors', '../shared/data/deit_tiny_patch16_224.safetensors'].map(root);
  const path = candidates.find((p) => existsSync(p));
  if (!path) throw new Error(`DeiT-tiny checkpoint not found at ${candidates.join(' or ')}`);
  return (deitBytes = readFileSync(path));
}

describe('safetensors', () => {
  test('F32 round trip keeps names, order, shapes, values (bits) and metadata; header padded to 8 bytes', () => {
    const a = Float32Array.from([1, -2.5, 3e-8, 65504, -0, Number.NaN]);
    const b = Float32Array.from([Math.PI]);
    const bytes = serializeSafetensors([{ name: 'b', shape: [1], data: b }, { name: 'a', shape: [2, 3], data: a }], { note: 'héllo' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + n))).toMatch(/^\{.*\} *$/); // JSON, then space padding
    const st = parseSafetensors(bytes);
    expect(st.names()).toEqual(['b', 'a']);
    expect(st.entries.get('a')).toEqual({ name: 'a', dtype: 'F32', shape: [2, 3], begin: 4, end: 28 });
    expect(firstDifference(st.get('a'), a)).toBe(-1);
    expect(firstDifference(st.get('b'), b)).toBe(-1);
    expect(st.metadata).toEqual({ note: 'héllo' });
    expect(st.has('a') && !st.has('c')).toBe(true);
    expect(() => st.get('c')).toThrow(/safetensors: no tensor named c/);
  });

  test('the object form writes in key order; an ArrayBuffer and an unaligned view parse alike', () => {
    const bytes = serializeSafetensors({ z: { shape: [2], data: Float32Array.from([1, 2]) }, y: { shape: [], data: Float32Array.from([3]) } });
    expect(parseSafetensors(bytes.slice().buffer).names()).toEqual(['z', 'y']);
    // At an odd byte offset no Float32Array can view the data: get() must copy.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const st = parseSafetensors(shifted.subarray(1));
    expect(Array.from(st.get('z'))).toEqual([1, 2]);
    expect(Array.from(st.get('y'))).toEqual([3]);
  });

  test('the writer checks data length against the shape', () => {
    expect(() => serializeSafetensors([{ name: 'x', shape: [2, 2], data: new Float32Array(3) }])).toThrow(/safetensors: tensor x: 3 values for shape \[2, 2\], which needs 4/);
  });

  test('F16 decodes normals, the largest value, subnormals, zeros, infinities and NaN', () => {
    const codes = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555];
    const st = parseSafetensors(file({ h: { dtype: 'F16', shape: [codes.length], data_offsets: [0, 2 * codes.length] } }, u16(...codes)));
    const h = Array.from(st.get('h'));
    expect(h.slice(0, 5)).toEqual([1, -2, 65504, 2 ** -24, 1023 * 2 ** -24]);
    expect(h[3]).toBeCloseTo(5.96e-8, 10);
    expect(Object.is(h[5], 0) && Object.is(h[6], -0)).toBe(true);
    expect(h.slice(7, 9)).toEqual([Infinity, -Infinity]);
    expect(h[9]).toBeNaN();
    expect(h[10]).toBe(0.333251953125);
  });

  test('BF16 is the high half of an f32; F64 is rounded to f32; offsets may be unaligned', () => {
    const bf = u16(0x3f80, 0xc0a0, 0x4049, 0x7f80, 0x7fc0);
    const f64 = new Uint8Array(Float64Array.from([0.1, -1e300]).buffer);
    // One pad byte first so the F64 and BF16 data sit at odd offsets.
    const data = new Uint8Array([0, ...bf, ...f64]);
    const st = parseSafetensors(file({
      pad: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
      b: { dtype: 'BF16', shape: [5], data_offsets: [1, 11] },
      d: { dtype: 'F64', shape: [2], data_offsets: [11, 27] },
    }, data));
    const b = Array.from(st.get('b'));
    expect(b.slice(0, 4)).toEqual([1, -5, 3.140625, Infinity]);
    expect(b[4]).toBeNaN();
    expect(Array.from(st.get('d'))).toEqual([Math.fround(0.1), -Infinity]);
    expect(st.get('pad').length).toBe(0);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['a truncated file', new Uint8Array(5), /^safetensors: truncated: 5 bytes/],
    ['a header length over the limit', withHeaderLength(1n << 40n), /^safetensors: header length 1099511627776 exceeds the limit of 104857600 bytes/],
    ['a header past the end', withHeaderLength(100n), /^safetensors: header length 100 runs past the end of the file \(16 bytes\)/],
    ['a header that is not JSON', file({}).fill(0x7b, 8), /^safetensors: header is not valid UTF-8 JSON/],
    ['a header that is not UTF-8', (() => { const b = file({ ab: 1 }); b[10] = 0xff; return b; })(), /^safetensors: header is not valid UTF-8 JSON/],
    ['a header that is a JSON array', file([]), /^safetensors: header is not a JSON object/],
    ['metadata that is not strings', file({ __metadata__: { a: 1 } }), /^safetensors: __metadata__ is not a map of strings/],
    ['an unknown dtype', file({ x: { dtype: 'I4', shape: [1], data_offsets: [0, 1] } }, [0]), /^safetensors: tensor x: unsupported dtype "I4" \(supported: F32, F16, BF16, F64\)/],
    ['a negative dimension', file({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /^safetensors: tensor x: shape \[-1\] is not a list of non-negative integers/],
    ['a fractional dimension', file({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor x: shape \[1.5\] is not a list/],
    ['a shape that is not a list', file({ x: { dtype: 'F32', shape: 4, data_offsets: [0, 16] } }, new Uint8Array(16)), /tensor x: shape 4 is not a list/],
    ['fractional offsets', file({ x: { dtype: 'F32', shape: [1], data_offsets: [0.5, 4.5] } }, new Uint8Array(8)), /tensor x: data_offsets \[0.5,4.5\] are not two non-negative integers/],
    ['reversed offsets', file({ x: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)), /tensor x: data_offsets \[4, 0\] are reversed/],
    ['offsets past the data', file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)), /tensor x: data_offsets \[0, 8\] run past the end of the data \(4 bytes\)/],
    ['a byte length that does not match the shape', file({ x: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor x: 8 bytes of data for F16 shape \[3\], which needs 6/],
    ['overlapping tensors', file({ y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] }, x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(12)), /^safetensors: tensors x and y overlap/],
  ];
  test.each(bad)('rejects %s, naming the problem', (_, bytes, pattern) => {
    expect(() => parseSafetensors(bytes)).toThrow(pattern);
  });

  test('the header limit can be lowered', () => {
    const bytes = serializeSafetensors([{ name: 'x', shape: [1], data: new Float32Array(1) }]);
    expect(() => parseSafetensors(bytes, { maxHeaderBytes: 16 })).toThrow(/exceeds the limit of 16 bytes/);
  });
});

describe('DeiT-tiny checkpoint', () => {
  test('parses, maps to timm names, infers the DeiT-tiny config and passes checkWeights', () => {
    const st = parseSafetensors(deitTiny());
    expect(st.names()).toHaveLength(152);
    expect(detectLayout(st.names(), VIT_KEYS)).toBe('timm');
    const weights = toTimmNames(st, VIT_KEYS);
    expect(weights.size).toBe(152);
    expect([...weights.values()].reduce((n, t) => n + t.data.length, 0)).toBe(5_717_416);
    const config = inferConfig(weights);
    expect(config).toMatchObject({ dim: 192, depth: 12, heads: 3, numClasses: 1000, imageSize: 224, patchSize: 16, inChannels: 3, mlpDim: 768, qkvBias: true, tokens: 'cls', globalPool: 'token' });
    expect(config).toEqual(PRESETS['deit-tiny']);
    expect(() => checkWeights(vit.parameterShapes(config), weights)).not.toThrow();
  });

  test('with the demo config.json (our own field names) gives the same config', () => {
    const weights = toTimmNames(parseSafetensors(deitTiny()), VIT_KEYS);
    const json: unknown = JSON.parse(readFileSync(root('public/models/deit-tiny/config.json'), 'utf8'));
    expect(parseConfig(json, weights)).toEqual(PRESETS['deit-tiny']);
  });

  test.each(['vit', 'deit'] as const)('a Hugging Face copy (%s.*, split q/k/v) maps back to the same tensors bit for bit', (prefix) => {
    const timm = toTimmNames(parseSafetensors(deitTiny()), VIT_KEYS);
    const hf = toHuggingFace(timm, prefix);
    // Extras that carry no weights of ours, and a pooler only pretraining uses: ignored.
    hf.set(`${prefix}.embeddings.position_ids`, { shape: [1, 197], data: new Float32Array(197) });
    hf.set(`${prefix}.pooler.dense.weight`, { shape: [2, 2], data: new Float32Array(4) });
    const bytes = serializeSafetensors([...hf].map(([name, t]) => ({ name, ...t })));
    const st = parseSafetensors(bytes);
    expect(st.has(`${prefix}.encoder.layer.11.attention.attention.value.bias`)).toBe(true);
    expect(detectLayout(st.names(), VIT_KEYS)).toBe('huggingface');
    const back = toTimmNames(st, VIT_KEYS);
    expectSameTensors(back, timm);
    // Also from tensors in memory rather than a file.
    expectSameTensors(toTimmNames(hf, VIT_KEYS), timm);
  });

  test('Hugging Face config.json plus renamed weights: eps and labels from the config, the rest from the weights', () => {
    const timm = toTimmNames(parseSafetensors(deitTiny()), VIT_KEYS);
    const names = JSON.parse(readFileSync(root('public/models/deit-tiny/labels.json'), 'utf8')) as string[];
    const hfConfig = {
      architectures: ['ViTForImageClassification'], model_type: 'vit', hidden_act: 'gelu', hidden_size: 192, num_hidden_layers: 12,
      num_attention_heads: 3, intermediate_size: 768, image_size: 224, patch_size: 16, num_channels: 3, layer_norm_eps: 1e-12, qkv_bias: true,
      id2label: Object.fromEntries(names.map((n, i) => [String(i), n])),
    };
    const config = parseConfig(hfConfig, toTimmNames(toHuggingFace(timm, 'vit'), VIT_KEYS));
    expect(config).toEqual({ ...PRESETS['deit-tiny'], eps: 1e-12, labels: names });
  });

  test('checkWeights names a missing tensor, a wrong shape and an extra tensor', () => {
    const weights = toTimmNames(parseSafetensors(deitTiny()), VIT_KEYS);
    const config = inferConfig(weights);
    const missing = new Map(weights);
    missing.delete('blocks.3.mlp.fc2.bias');
    expect(() => checkWeights(vit.parameterShapes(config), missing)).toThrow(/missing blocks\.3\.mlp\.fc2\.bias \[192\]/);
    const wrong = new Map(weights);
    wrong.set('blocks.7.attn.qkv.weight', { shape: [576, 191], data: new Float32Array(576 * 191) });
    expect(() => checkWeights(vit.parameterShapes(config), wrong)).toThrow(/blocks\.7\.attn\.qkv\.weight has shape \[576, 191\], the config needs \[576, 192\]/);
    const extra = new Map(weights);
    extra.set('head_dist.weight', { shape: [1000, 192], data: new Float32Array(192_000) });
    expect(() => checkWeights(vit.parameterShapes(config), extra)).toThrow(/no place for: head_dist\.weight/);
    expect(() => checkWeights(vit.parameterShapes({ ...config, qkvBias: false }), weights)).toThrow(/no place for: blocks\.0\.attn\.qkv\.bias/);
  });
});

describe('timm ViT options: LayerScale, no_embed_class, registers', () => {
  test('DeiT-III (deit3_small_patch16_224 at width 96): LayerScale and no_embed_class follow from the architecture, and the tensors agree', () => {
    const { weights, json } = fixture('deit3', 'deit3_micro');
    expect((json.model_args as object)).not.toHaveProperty('init_values');
    const config = parseConfig(json, weights);
    expect(config).toEqual({
      ...PRESETS['deit3-small'], dim: 96, depth: 4, heads: 3, mlpDim: 384, numClasses: 10,
    });
    expect(vit.parameterShapes(config).filter(([n]) => n.endsWith('.gamma'))).toHaveLength(8);
    checkWeights(vit.parameterShapes(config), weights);
    // Weights alone: LayerScale from ls1.gamma (timm's default init 1e-5), no_embed_class from 196 rows (195 is no square).
    expect(inferConfig(weights, { heads: 3 })).toMatchObject({ layerScale: 1e-5, noEmbedClass: true, tokens: 'cls' });
  });

  test('DINOv2 with registers (vit_small_patch14_reg4_dinov2 at width 48, 112 px): patch 14, 4 registers, LayerScale, no_embed_class', () => {
    const { weights, json } = fixture('vitreg', 'vit_reg_micro');
    const config = parseConfig(json, weights);
    expect(config).toEqual({
      ...PRESETS['dinov2-small-reg4'], imageSize: 112, dim: 48, depth: 3, heads: 3, mlpDim: 192, numClasses: 10,
    });
    expect(inferConfig(weights, { heads: 3 })).toMatchObject({ regTokens: 4, noEmbedClass: true, patchSize: 14, imageSize: 112 });
  });

  test('DeiT-III run at 160x256 with dynamic_img_size: the non-square input_size is the run size; the training size comes from the weights', () => {
    const { weights } = fixture('deit3', 'deit3_micro');
    const json = JSON.parse(readFileSync(root('tests/fixtures/deit3/deit3_micro_160x256.json'), 'utf8')) as Record<string, unknown>;
    expect(parseConfig(json, weights)).toEqual(parseConfig(fixture('deit3', 'deit3_micro').json, weights));
    const { model_args: _, ...fixed } = json;
    expect(() => parseConfig(fixed, weights)).toThrow(/config: input_size \[3, 160, 256\] is not square/);
  });

  test('a config that disagrees with the tensors is refused, naming the field', () => {
    const deit3 = fixture('deit3', 'deit3_micro');
    const noGamma = new Map([...deit3.weights].filter(([n]) => !n.endsWith('.gamma')));
    expect(() => parseConfig(deit3.json, noGamma)).toThrow(/config: disagrees with the weights: layerScale 0\.000001 \(weights: "absent/);
    const off = { ...deit3.json, model_args: { ...(deit3.json.model_args as object), init_values: null } };
    expect(() => parseConfig(off, deit3.weights)).toThrow(/layerScale null \(weights: "present/);
    const withClassRow = { ...deit3.json, model_args: { ...(deit3.json.model_args as object), no_embed_class: false } };
    expect(() => parseConfig(withClassRow, deit3.weights)).toThrow(/pos_embed has 196 rows, not a square grid for 1 prefix tokens and the patches/);
    const reg = fixture('vitreg', 'vit_reg_micro');
    const two = { ...reg.json, model_args: { ...(reg.json.model_args as object), reg_tokens: 2 } };
    expect(() => parseConfig(two, reg.weights)).toThrow(/regTokens 2 \(weights: 4\)/);
    expect(() => parseConfig({ ...reg.json, architecture: 'vit_small_patch16_224' }, reg.weights)).toThrow(/patchSize 16 \(weights: 14\)/);
    // A plain ViT config on DeiT-III's tensors: the tensors show LayerScale, the config did not say: loaded with it.
    expect(parseConfig({ ...deit3.json, architecture: 'vit_small_patch16_224' }, deit3.weights)).toMatchObject({ layerScale: 1e-5, noEmbedClass: true });
  });

  test('a position embedding that reads both ways needs the config to say which', () => {
    // cls + 4 registers: 9 rows are 3x3 patches alone or 2x2 patches after 5 prefix tokens.
    const c: ViTConfig = { ...PRESETS['dinov2-small-reg4'], imageSize: 42, dim: 48, depth: 1, heads: 3, mlpDim: 96 };
    const weights = syntheticWeights(c);
    expect(weights.get('pos_embed')!.shape).toEqual([1, 9, 48]);
    expect(() => inferConfig(weights, { heads: 3 })).toThrow(/pos_embed's 9 rows read either way/);
    expect(inferConfig(weights, { heads: 3, imageSize: 42 })).toMatchObject({ noEmbedClass: true, imageSize: 42 });
    const withPrefix = inferConfig(weights, { heads: 3, noEmbedClass: false });
    expect(withPrefix).toMatchObject({ imageSize: 28 });
    expect(withPrefix).not.toHaveProperty('noEmbedClass');
  });

  test('Hugging Face Dinov2Model: names mapped (mask_token ignored, layer_scale lambda1 is ls gamma), a backbone without classes', () => {
    const c: ViTConfig = { ...PRESETS['dinov2-small'], imageSize: 28, dim: 48, depth: 2, heads: 3, mlpDim: 192 };
    const timm = syntheticWeights(c);
    expect(timm.has('head.weight')).toBe(false);
    const hfConfig = {
      architectures: ['Dinov2Model'], model_type: 'dinov2', hidden_size: 48, num_hidden_layers: 2, num_attention_heads: 3, mlp_ratio: 4,
      image_size: 28, patch_size: 14, num_channels: 3, layerscale_value: 1, layer_norm_eps: 1e-6, qkv_bias: true, hidden_act: 'gelu',
      use_swiglu_ffn: false, id2label: { 0: 'LABEL_0', 1: 'LABEL_1' },
    };
    for (const prefix of ['', 'dinov2.'] as const) {
      const hf = toDinov2HuggingFace(timm, prefix);
      expect(hf.has(`${prefix}encoder.layer.1.layer_scale2.lambda1`)).toBe(true);
      const back = toTimmNames(parseSafetensors(serializeSafetensors([...hf].map(([name, t]) => ({ name, ...t })))), VIT_KEYS);
      expectSameTensors(back, timm);
      const config = parseConfig(hfConfig, back);
      expect(config).toEqual({ ...c, layerScale: 1, cropPct: 0.875 });
      checkWeights(vit.parameterShapes(config), back);
    }
  });
});

describe('Hugging Face Dinov2WithRegisters', () => {
  test('its class row folds into the class token (timm\'s layout): the same features as timm\'s reg4 model', () => {
    const { weights: timm } = fixture('vitreg', 'vit_reg_micro');
    const D = 48;
    // Hugging Face keeps a class row in the position embedding; any row r with cls - r gives timm's cls.
    const r = Float32Array.from({ length: D }, (_, d) => Math.fround(Math.sin(d) / 4));
    const body = new Map([...timm].filter(([n]) => !/^(head|reg_token)/.test(n)));
    const cls = timm.get('cls_token')!;
    const pos = timm.get('pos_embed')!;
    body.set('cls_token', { shape: cls.shape, data: cls.data.map((v, d) => v - r[d]!) });
    body.set('pos_embed', { shape: [1, pos.shape[1]! + 1, D], data: Float32Array.from([...r, ...pos.data]) });
    const hf = toDinov2HuggingFace(body, '');
    hf.set('embeddings.register_tokens', timm.get('reg_token')!);
    const back = toTimmNames(parseSafetensors(serializeSafetensors([...hf].map(([name, t]) => ({ name, ...t })))), VIT_KEYS);
    expect(back.get('pos_embed')!.shape).toEqual([1, 64, D]);
    expect(firstDifference(back.get('pos_embed')!.data, pos.data)).toBe(-1);
    back.get('cls_token')!.data.forEach((v, d) => expect(v).toBeCloseTo(cls.data[d]!, 6));
    const config = parseConfig({
      architectures: ['Dinov2WithRegistersModel'], model_type: 'dinov2_with_registers', hidden_size: D, num_hidden_layers: 3, num_attention_heads: 3,
      mlp_ratio: 4, image_size: 112, patch_size: 14, num_register_tokens: 4, layerscale_value: 1, layer_norm_eps: 1e-6, id2label: { 0: 'LABEL_0', 1: 'LABEL_1' },
    }, back);
    expect(config).toMatchObject({ regTokens: 4, noEmbedClass: true, layerScale: 1, numClasses: 0, patchSize: 14, imageSize: 112 });
    const golden = parseSafetensors(readFileSync(root('tests/fixtures/vitreg/vit_reg_micro_golden.safetensors')));
    const input = parseSafetensors(readFileSync(root('tests/fixtures/vitreg/vit_reg_micro_input.safetensors'))).get('input');
    const features = vitForwardRef(config, new Map([...back].map(([n, t]) => [n, t.data])), input, 2).features;
    expect(relL2(features, golden.get('features'))).toBeLessThan(1e-6);
  });
});

describe('key mapping and config inference', () => {
  const small: ViTConfig = { ...PRESETS['vit-tiny'], imageSize: 32, patchSize: 8, dim: 256, depth: 2, heads: 8, mlpDim: 512, numClasses: 10, cropPct: 1, tokens: 'cls+dist' };

  test('HF DeiT with a teacher: distillation token and both heads map to dist_token, head, head_dist', () => {
    const timm = syntheticWeights(small);
    const hf = toHuggingFace(timm, 'deit');
    expect(hf.has('distillation_classifier.weight') && hf.has('deit.embeddings.distillation_token')).toBe(true);
    const back = toTimmNames(hf, VIT_KEYS);
    expectSameTensors(back, timm);
    const config = inferConfig(back, { heads: 8, cropPct: 1 });
    expect(config).toEqual(small);
    checkWeights(vit.parameterShapes(config), back);
  });

  test('avg pooling is read off fc_norm; no qkv bias and no class token off their absence', () => {
    const c: ViTConfig = { ...PRESETS['fashion-mnist'], globalPool: 'avg', qkvBias: false, tokens: 'none' };
    const config = inferConfig(syntheticWeights(c), { heads: 4 });
    expect(config).toMatchObject({ globalPool: 'avg', qkvBias: false, tokens: 'none', inChannels: 1, imageSize: 28, mean: [0.5], std: [0.5] });
    checkWeights(vit.parameterShapes(config), syntheticWeights(c));
  });

  test('unmappable keys are errors that name them, in either layout', () => {
    const timm = syntheticWeights(PRESETS['cifar-small']);
    const extra = new Map([...timm, ['blocks.0.attn.q_norm.weight', { shape: [128], data: new Float32Array(128) }]]);
    expect(() => toTimmNames(extra, VIT_KEYS)).toThrow(/checkpoint: 1 timm key\(s\) with no timm equivalent: blocks\.0\.attn\.q_norm\.weight/);
    const hf = toHuggingFace(timm, 'vit');
    hf.set('vit.encoder.layer.1.attention.attention.relative_bias', { shape: [1], data: new Float32Array(1) });
    expect(() => toTimmNames(hf, VIT_KEYS)).toThrow(/huggingface key\(s\) with no timm equivalent: vit\.encoder\.layer\.1\.attention\.attention\.relative_bias/);
    const noValue = toHuggingFace(timm, 'vit');
    noValue.delete('vit.encoder.layer.1.attention.attention.value.weight');
    expect(() => toTimmNames(noValue, VIT_KEYS)).toThrow(/blocks\.1\.attn\.qkv\.weight needs query, key and value; missing value/);
    const twice = toHuggingFace(timm, 'vit');
    twice.set('cls_classifier.weight', twice.get('classifier.weight')!);
    expect(() => toTimmNames(twice, VIT_KEYS)).toThrow(/classifier\.weight and cls_classifier\.weight both map to head\.weight/);
  });

  test('inferConfig refuses a config that disagrees with the weights, and an unknown width without heads', () => {
    const weights = syntheticWeights(PRESETS['cifar-small']);
    expect(() => inferConfig(weights, { dim: 384, heads: 8 })).toThrow(/config: disagrees with the weights: dim 384 \(weights: 256\)/);
    expect(() => inferConfig(weights, { imageSize: 64, heads: 8 })).toThrow(/imageSize 64 \(weights: 32\)/);
    expect(() => inferConfig(weights)).toThrow(/number of heads is not given and width 256/);
    expect(() => inferConfig(new Map())).toThrow(/not a ViT checkpoint .*missing patch_embed\.proj\.weight/);
  });
});

describe('parseConfigJson', () => {
  const hf = {
    _name_or_path: 'google/vit-base-patch16-224', architectures: ['ViTForImageClassification'], attention_probs_dropout_prob: 0,
    encoder_stride: 16, hidden_act: 'gelu', hidden_dropout_prob: 0, hidden_size: 768, image_size: 224, initializer_range: 0.02,
    intermediate_size: 3072, layer_norm_eps: 1e-12, model_type: 'vit', num_attention_heads: 12, num_channels: 3, num_hidden_layers: 12,
    patch_size: 16, qkv_bias: true, torch_dtype: 'float32', transformers_version: '4.40.0',
    id2label: { 0: 'tench', 1: 'goldfish', 2: 'great white shark' }, label2id: { tench: 0, goldfish: 1, 'great white shark': 2 },
  };

  test('Hugging Face config.json', () => {
    expect(parseConfigJson(hf)).toEqual({
      imageSize: 224, patchSize: 16, inChannels: 3, dim: 768, depth: 12, heads: 12, mlpDim: 3072, qkvBias: true, eps: 1e-12,
      numClasses: 3, labels: ['tench', 'goldfish', 'great white shark'],
    });
    expect(parseConfigJson(JSON.stringify(hf), { cropPct: 0.9 }).cropPct).toBe(0.9);
    expect(parseConfigJson({ ...hf, architectures: ['DeiTForImageClassificationWithTeacher'], model_type: 'deit' }).tokens).toBe('cls+dist');
  });

  test('timm config.json with pretrained_cfg and model_args', () => {
    const timm = {
      architecture: 'deit_tiny_patch16_224', num_classes: 1000, num_features: 192, global_pool: 'token',
      pretrained_cfg: { tag: 'fb_in1k', input_size: [3, 224, 224], interpolation: 'bicubic', crop_pct: 0.875, crop_mode: 'center', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], num_classes: 1000, pool_size: null, classifier: 'head' },
      model_args: { patch_size: 16, embed_dim: 192, depth: 12, num_heads: 3, qkv_bias: true, class_token: true, no_embed_class: false, pre_norm: false, fc_norm: null, mlp_ratio: 4 },
    };
    expect(parseConfigJson(timm)).toEqual({
      imageSize: 224, patchSize: 16, inChannels: 3, dim: 192, depth: 12, heads: 3, mlpDim: 768, qkvBias: true, globalPool: 'token',
      noEmbedClass: false, numClasses: 1000, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], cropPct: 0.875,
    });
    expect(parseConfigJson({ architecture: 'deit_tiny_distilled_patch16_224', label_names: ['a', 'b'] })).toEqual({ patchSize: 16, tokens: 'cls+dist', labels: ['a', 'b'], numClasses: 2 });
    expect(parseConfigJson({ global_pool: 'avg', fc_norm: true, class_token: false })).toEqual({ globalPool: 'avg', fcNorm: true, tokens: 'none' });
  });

  test('our own field names, merged over a base', () => {
    const own = JSON.parse(readFileSync(root('public/models/deit-tiny/config.json'), 'utf8')) as unknown;
    const { labels: _, ...preset } = PRESETS['deit-tiny'] as ViTConfig;
    expect(parseConfigJson(own)).toEqual(preset);
    expect(parseConfigJson({ heads: 4 }, { heads: 2, eps: 1e-5 })).toEqual({ heads: 4, eps: 1e-5 });
  });

  test.each([
    ['GELU with tanh', { ...hf, hidden_act: 'gelu_new' }, /config: hidden_act "gelu_new" is not supported/],
    ['another HF model type', { ...hf, model_type: 'swin' }, /config: model_type "swin" is not supported/],
    ['another timm architecture', { architecture: 'beit_base_patch16_224' }, /config: architecture "beit_base_patch16_224" is not supported/],
    ['DINOv2-giant (SwiGLU)', { architecture: 'vit_giant_patch14_dinov2' }, /SwiGLU MLP/],
    ['Hugging Face DINOv2 with a SwiGLU MLP', { model_type: 'dinov2', use_swiglu_ffn: true }, /use_swiglu_ffn .* is not supported/],
    ['Hugging Face DINOv2 classifier', { model_type: 'dinov2', architectures: ['Dinov2ForImageClassification'] }, /patches' mean side by side/],
    ['pre_norm', { model_args: { pre_norm: true } }, /config: pre_norm .* is not supported/],
    ['map pooling', { global_pool: 'map' }, /config: global_pool "map" is not supported/],
    ['fc_norm with token pooling', { global_pool: 'token', fc_norm: true }, /config: fc_norm true with global_pool "token" is not supported/],
    ['a wrongly typed field', { embed_dim: '192' }, /config: embed_dim must be a positive integer, got "192"/],
    ['a non-square input', { input_size: [3, 224, 256] }, /config: input_size \[3, 224, 256\] is not square/],
    ['gappy id2label', { id2label: { 0: 'a', 2: 'c' } }, /config: id2label must map 0\.\.1 to strings/],
    ['an object of another kind', { vocab_size: 30522, tokenizer_class: 'Bert' }, /config: none of the fields vocab_size, tokenizer_class is a ViTConfig, timm or Hugging Face/],
    ['a list', [1, 2], /config: expected a JSON object, got an array/],
    ['a number', 3, /config: expected a JSON object, got number/],
    ['text that is not JSON', '{nope', /config: not valid JSON/],
  ])('rejects %s', (_, json, pattern) => {
    expect(() => parseConfigJson(json)).toThrow(pattern);
  });
});
