// A corpus of bad inputs, generated here, through the worker API as the demo and the CLI use it:
// each is refused with its exact message before it can produce a silent wrong answer (NaN
// probabilities, classes 0-4 as a "top-5", a two-minute run), and the worker stays usable.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MAX_TOKENS_PER_IMAGE } from '../src/limits';
import { parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';
import { startEngineWorker, type EngineClient } from '../src/worker/start';
import { DEIT_TINY_URL, fetchBytes } from './helpers/fixtures';
import { messageOf } from './helpers/errors';

let engine: EngineClient;
let deitConfig: Record<string, unknown>;
let deit: ArrayBuffer;

beforeAll(async () => {
  engine = startEngineWorker();
  await engine.init();
  deitConfig = await (await fetch('/models/deit-tiny/config.json')).json();
  deit = await fetchBytes(DEIT_TINY_URL);
  await engine.loadModelFromUrl('/models/deit-tiny/');
});
afterAll(() => engine.terminate());

/** DeiT-tiny with some values changed: `edit` gets each tensor's name and a copy of its data. */
function deitWith(edit: (name: string, data: Float32Array) => void): ArrayBuffer {
  const st = parseSafetensors(deit);
  const out = serializeSafetensors(st.names().map((name) => {
    const data = st.get(name);
    edit(name, data);
    return { name, shape: st.entries.get(name)!.shape, data };
  }));
  return out.buffer as ArrayBuffer;
}

/** A safetensors file from raw header text (so it may hold what JSON.stringify cannot write). */
function rawHeader(text: string, dataBytes: number): ArrayBuffer {
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out.buffer;
}

/** A PNG whose header declares width x height: signature and IHDR only (it is never decoded). */
function pngHeader(width: number, height: number): Blob {
  const b = new Uint8Array(33);
  const v = new DataView(b.buffer);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  v.setUint32(8, 13);
  b.set([...'IHDR'].map((c) => c.charCodeAt(0)), 12);
  v.setUint32(16, width);
  v.setUint32(20, height);
  b.set([8, 6, 0, 0, 0], 24); // 8-bit RGBA; the CRC stays 0
  return new File([b], 'bomb.png', { type: 'image/png' });
}

/** A JPEG whose header declares width x height: SOI, a JFIF APP0 segment, then the frame header. */
function jpegHeader(width: number, height: number): Blob {
  const app0 = [0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sof0 = [0xff, 0xc0, 0, 17, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return new File([new Uint8Array([0xff, 0xd8, ...app0, ...sof0])], 'bomb.jpg', { type: 'image/jpeg' });
}

describe('checkpoints', () => {
  test('a NaN in a weight is named with its tensor and index', async () => {
    const bytes = deitWith((name, data) => {
      if (name === 'blocks.3.mlp.fc1.weight') data[1234] = Number.NaN;
    });
    expect(await messageOf(engine.loadModel('x', bytes, deitConfig))).toBe('checkpoint: blocks.3.mlp.fc1.weight holds NaN at index 1234');
  });

  test('an infinity in a weight', async () => {
    const bytes = deitWith((name, data) => {
      if (name === 'head.bias') data[7] = -Infinity;
    });
    expect(await messageOf(engine.loadModel('x', bytes, deitConfig))).toBe('checkpoint: head.bias holds -Infinity at index 7');
  });

  test('a 0-byte checkpoint', async () => {
    expect(await messageOf(engine.loadModel('x', new ArrayBuffer(0), deitConfig))).toBe('safetensors: empty file (0 bytes)');
  });

  test('an empty config, and a config that is not JSON', async () => {
    expect(await messageOf(engine.loadModel('x', deit.slice(0), ''))).toBe('config: empty file (0 bytes)');
    let parseError = '';
    try {
      JSON.parse('{"dim": 192,');
    } catch (e) {
      parseError = (e as Error).message; // the engine's JSON.parse says the same (one Chromium)
    }
    expect(await messageOf(engine.loadModel('x', deit.slice(0), '{"dim": 192,'))).toBe(`config: not valid JSON (${parseError})`);
  });

  test('a key twice in the header, at the top level and inside an entry', async () => {
    const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    expect(await messageOf(engine.loadModel('x', rawHeader(`{"a":${entry},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":${entry}}`, 8), deitConfig)))
      .toBe('safetensors: key "a" appears twice in the header');
    expect(await messageOf(engine.loadModel('x', rawHeader('{"a":{"dtype":"F32","shape":[1],"dtype":"F16","data_offsets":[0,4]}}', 4), deitConfig)))
      .toBe('safetensors: key "dtype" appears twice in the header (in "a")');
  });

  test('a checkpoint over the size limit, given as bytes or as a URL (refused by its Content-Length)', async () => {
    expect(await messageOf(engine.loadModel('x', new ArrayBuffer(4096), deitConfig, undefined, { maxBytes: 1000 })))
      .toBe('checkpoint: 4.0 KiB (4,096 bytes) is over the limit of 1,000 bytes for one checkpoint');
    expect(await messageOf(engine.loadModelFromUrl('/models/deit-tiny/', undefined, { maxBytes: 2 ** 20 })))
      .toBe('checkpoint: 10.9 MiB (11,448,488 bytes) is over the limit of 1.0 MiB (1,048,576 bytes) for one checkpoint');
  });
});

describe('inputs', () => {
  test('a NaN in an input tensor is named by image, channel, row and column', async () => {
    const S = 224;
    const input = new Float32Array(2 * 3 * S * S);
    input[1 * 3 * S * S + 2 * S * S + 5 * S + 7] = Number.NaN;
    expect(await messageOf(engine.classifyTensor(input, 2, S))).toBe('input: image 1 holds NaN at channel 2, row 5, column 7');
  });

  test('an input over the token limit is refused before any GPU work', async () => {
    expect(MAX_TOKENS_PER_IMAGE).toBe(4096);
    const started = performance.now();
    expect(await messageOf(engine.classifyTensor(new Float32Array(3 * 2048 * 2048), 1, 2048)))
      .toBe('input: a 2048x2048 image makes 16,385 tokens (128x128 patches of 16 px + 1), over the limit of 4,096 tokens per image');
    expect(performance.now() - started).toBeLessThan(20_000); // the forward pass it replaces ran past 120 s
  });

  test('images whose header declares more pixels than the limit: PNG and JPEG', async () => {
    expect(await messageOf(engine.classify([pngHeader(100000, 100000)])))
      .toBe('image: bomb.png is 100000x100000 pixels, too large: the limit is 268,435,456 pixels (16384x16384)');
    expect(await messageOf(engine.classify([jpegHeader(65000, 65000)])))
      .toBe('image: bomb.jpg is 65000x65000 pixels, too large: the limit is 268,435,456 pixels (16384x16384)');
  });
});

describe('outputs', () => {
  test('logits that overflow float32 are reported, not shown as NaN probabilities', async () => {
    // Finite weights whose product is not: the final norm outputs 1e20 in every feature (its
    // scale 0, its shift 1e20), and 1e20 * 1e20 overflows in every head product.
    const bytes = deitWith((name, data) => {
      if (name === 'norm.weight') data.fill(0);
      if (name === 'norm.bias' || name === 'head.weight') data.fill(1e20);
    });
    await engine.loadModel('overflow', bytes, deitConfig);
    expect(await messageOf(engine.classifyTensor(new Float32Array(3 * 224 * 224), 1, 224)))
      .toBe('output: the logits of image 0 hold Infinity at class 0: the model overflows float32 on this input');
  });

  test('after all of the above the worker still classifies', async () => {
    await engine.loadModelFromUrl('/models/deit-tiny/');
    const coffee = new Blob([await fetchBytes('/samples/coffee.png')], { type: 'image/png' });
    const [r] = await engine.classify([coffee]);
    expect(r!.top[0]!.label).toBe('espresso');
  });
});
