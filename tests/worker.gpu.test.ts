// The engine through its Web Worker, as the demo and other apps use it.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';
import { startEngineWorker, type EngineClient } from '../src/worker/start';
import { fetchBytes, DEIT_TINY_URL } from './helpers/fixtures';

const CATS = new Set([281, 282, 283, 284, 285, 286, 287]); // tabby ... lynx: the cat classes of ImageNet
let engine: EngineClient;
let deitConfig: Record<string, unknown>;

async function sample(name: string): Promise<Blob> {
  return new Blob([await fetchBytes(`/samples/${name}`)], { type: name.endsWith('.png') ? 'image/png' : 'image/jpeg' });
}

/** DeiT-tiny renamed into Hugging Face ViTForImageClassification layout, q/k/v split. */
function toHuggingFace(bytes: ArrayBuffer): Uint8Array {
  const st = parseSafetensors(bytes);
  const out: { name: string; shape: number[]; data: Float32Array }[] = [];
  const put = (name: string, from: string) => out.push({ name, shape: st.entries.get(from)!.shape, data: st.get(from) });
  put('vit.embeddings.cls_token', 'cls_token');
  put('vit.embeddings.position_embeddings', 'pos_embed');
  put('vit.embeddings.patch_embeddings.projection.weight', 'patch_embed.proj.weight');
  put('vit.embeddings.patch_embeddings.projection.bias', 'patch_embed.proj.bias');
  for (let i = 0; i < 12; i++) {
    const hf = `vit.encoder.layer.${i}`;
    const timm = `blocks.${i}`;
    for (const kind of ['weight', 'bias']) {
      put(`${hf}.layernorm_before.${kind}`, `${timm}.norm1.${kind}`);
      const qkv = st.get(`${timm}.attn.qkv.${kind}`);
      const third = qkv.length / 3;
      const shape = kind === 'weight' ? [192, 192] : [192];
      ['query', 'key', 'value'].forEach((part, j) => out.push({ name: `${hf}.attention.attention.${part}.${kind}`, shape, data: qkv.slice(j * third, (j + 1) * third) }));
      put(`${hf}.attention.output.dense.${kind}`, `${timm}.attn.proj.${kind}`);
      put(`${hf}.layernorm_after.${kind}`, `${timm}.norm2.${kind}`);
      put(`${hf}.intermediate.dense.${kind}`, `${timm}.mlp.fc1.${kind}`);
      put(`${hf}.output.dense.${kind}`, `${timm}.mlp.fc2.${kind}`);
    }
  }
  put('vit.layernorm.weight', 'norm.weight');
  put('vit.layernorm.bias', 'norm.bias');
  put('classifier.weight', 'head.weight');
  put('classifier.bias', 'head.bias');
  return serializeSafetensors(out.reverse()); // another order too: nothing may depend on it
}

beforeAll(async () => {
  engine = startEngineWorker();
  await engine.init();
  deitConfig = await (await fetch('/models/deit-tiny/config.json')).json();
  await engine.loadModelFromUrl('/models/deit-tiny/');
});
afterAll(() => engine.terminate());

describe('classification through the worker', () => {
  test('chelsea.png is an Egyptian Mau, the three top classes cats; coffee.png is espresso', async () => {
    const [cat, coffee] = await engine.classify([await sample('chelsea.png'), await sample('coffee.png')], { topK: 5 });
    console.log(JSON.stringify(cat!.top.slice(0, 3)), JSON.stringify(coffee!.top.slice(0, 1)));
    expect(cat!.top[0]!.label).toBe('Egyptian Mau');
    expect(cat!.top.slice(0, 3).every((p) => CATS.has(p.index))).toBe(true);
    expect(coffee!.top[0]!.label).toBe('espresso');
  });

  test('the same weights in Hugging Face layout (q/k/v split) give the same logits', async () => {
    const input = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.001));
    const [timm] = await engine.classifyTensor(input.slice(), 1, 224, { logits: true });
    const hf = toHuggingFace(await fetchBytes(DEIT_TINY_URL));
    const hfConfig = { hidden_size: 192, num_hidden_layers: 12, num_attention_heads: 3, intermediate_size: 768, image_size: 224, patch_size: 16, layer_norm_eps: 1e-6, hidden_act: 'gelu' };
    await engine.loadModel('hf', hf.buffer as ArrayBuffer, hfConfig);
    const [other] = await engine.classifyTensor(input.slice(), 1, 224, { logits: true });
    expect(Array.from(other!.logits!)).toEqual(Array.from(timm!.logits!));
    await engine.loadModelFromUrl('/models/deit-tiny/');
  });

  test('attention, rollout and features come back on request', async () => {
    const [r] = await engine.classify([await sample('chelsea.png')], { attention: true, rollout: { discardRatio: 0.9 }, features: true, tokens: true });
    expect(r!.attention!.probs).toHaveLength(12);
    expect(r!.attention!.probs[0]).toHaveLength(3 * 197 * 197);
    expect(r!.attention!.grid).toEqual([14, 14]);
    expect(r!.rollout).toHaveLength(196);
    expect(Math.max(...r!.rollout!)).toBeCloseTo(1, 6);
    expect(r!.features).toHaveLength(192);
    expect(r!.tokens).toHaveLength(196 * 192);
  });
});

describe('bad input is rejected by name and the worker stays usable', () => {
  const model = () => fetchBytes(DEIT_TINY_URL);
  async function rejects(promise: Promise<unknown>, pattern: RegExp) {
    await expect(promise).rejects.toThrow(pattern);
    const [r] = await engine.classify([await sample('coffee.png')]);
    expect(r!.top[0]!.label).toBe('espresso');
  }

  test('a truncated checkpoint', async () => {
    await rejects(engine.loadModel('x', (await model()).slice(0, 5000), deitConfig), /safetensors: header length \d+ runs past the end of the file|data_offsets .* run past the end/);
  });
  test('a header length beyond the file', async () => {
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setBigUint64(0, 1n << 40n, true);
    await rejects(engine.loadModel('x', bytes.buffer, deitConfig), /safetensors: header length 1099511627776 exceeds the limit/);
  });
  test('overlapping tensors, offsets outside the data, an unknown dtype', async () => {
    const make = (header: object, dataBytes: number) => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.length + dataBytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out.buffer;
    };
    await rejects(engine.loadModel('x', make({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), deitConfig), /tensors a and b overlap/);
    await rejects(engine.loadModel('x', make({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), deitConfig), /tensor a: data_offsets \[0, 16\] run past the end of the data \(8 bytes\)/);
    await rejects(engine.loadModel('x', make({ a: { dtype: 'Q4', shape: [4], data_offsets: [0, 2] } }, 2), deitConfig), /tensor a: unsupported dtype "Q4"/);
  });
  test('weights that do not fit the config, and a config that makes no sense', async () => {
    await rejects(engine.loadModel('x', await model(), { ...deitConfig, heads: 5 }), /config: dim 192 is not divisible by heads 5/);
    await rejects(engine.loadModel('x', await model(), { ...deitConfig, imageSize: 384 }), /config: disagrees with the weights: imageSize 384 \(weights: 224\)/);
    const st = parseSafetensors(await model());
    const missing = serializeSafetensors(st.names().filter((n) => n !== 'blocks.3.mlp.fc2.bias').map((n) => ({ name: n, shape: st.entries.get(n)!.shape, data: st.get(n) })));
    await rejects(engine.loadModel('x', missing.buffer as ArrayBuffer, deitConfig), /missing blocks\.3\.mlp\.fc2\.bias \[192\]/);
  });
  test('a file that is not an image, and an empty image file', async () => {
    await rejects(engine.classify([new Blob(['hello, world'], { type: 'text/plain' })]), /is not an image/);
    await rejects(engine.classify([new Blob([], { type: 'image/png' })]), /image: .* is empty \(0 bytes\)/);
  });
  test('a very large image is downscaled first, not rejected', async () => {
    const canvas = new OffscreenCanvas(9000, 8000);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, 9000, 8000);
    const [r] = await engine.classify([await canvas.convertToBlob({ type: 'image/png' })]);
    expect(r!.top).toHaveLength(5);
  });
});
