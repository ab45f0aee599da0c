// Streaming a checkpoint from disk without a GPU (weights/load.ts openCheckpoint over node/model.ts
// fileSource): the header alone gives the config and the shapes, and each tensor read on its own
// equals what the whole-file load (loadCheckpoint) gives, Hugging Face's split query/key/value
// included; bad files are refused with the whole-file load's messages, a NaN under the file's own name.
import { mkdtempSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test, vi } from 'vitest';
import { fileSource } from '../src/node/model';
import { loadCheckpoint, openCheckpoint } from '../src/weights/load';
import { parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';
import { bytesSource, rangeSource } from '../src/weights/source';
import { toSwinHuggingFace } from './helpers/swin';
import { messageOf } from './helpers/errors';

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'stream-'));

/** `bytes` written to a file, as a byte source that reads it range by range, counting the bytes read. */
function onDisk(name: string, bytes: Uint8Array) {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const source = fileSource(path, statSync(path));
  const reads: number[] = [];
  return { reads, source: { size: source.size, read: (b: number, e: number) => (reads.push(e - b), source.read(b, e)) } };
}

/** Bit for bit (a deep equal of millions of values is too slow for a test). */
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('a checkpoint streamed from disk', () => {
  test('DeiT-tiny: the same config and tensors as the whole-file load; no read larger than a tensor', async () => {
    const bytes = readFileSync(root('public/models/deit-tiny/model.safetensors'));
    const config: unknown = JSON.parse(readFileSync(root('public/models/deit-tiny/config.json'), 'utf8'));
    const whole = loadCheckpoint(bytes, config);
    const { source, reads } = onDisk('deit.safetensors', bytes);
    const opened = await openCheckpoint(source, config);
    expect(opened.config).toEqual(whole.config);
    expect(reads.reduce((a, b) => a + b, 0)).toBeLessThan(20_000); // the header only, so far
    for (const [name, t] of whole.weights) {
      expect(opened.tensors.get(name)!.shape, name).toEqual(t.shape);
      expect(sameBits(await opened.tensors.get(name)!.read(), t.data), name).toBe(true);
    }
    // The largest tensor as the file stores it (F16 here: two bytes a value).
    const largest = Math.max(...[...parseSafetensors(bytes).entries.values()].map((e) => e.end - e.begin));
    expect(Math.max(...reads)).toBe(largest);
  });

  test("Hugging Face's Swin (query, key and value apart): each qkv tensor built from its three parts as read", async () => {
    const json: unknown = JSON.parse(readFileSync(root('tests/fixtures/swin/swin_micro.json'), 'utf8'));
    const { weights } = loadCheckpoint(readFileSync(root('tests/fixtures/swin/swin_micro.safetensors')), json);
    const hf = serializeSafetensors([...toSwinHuggingFace(weights)].map(([name, t]) => ({ name, ...t })));
    const hfConfig = { model_type: 'swin', embed_dim: 16, depths: [2, 2, 2, 2], num_heads: [1, 2, 4, 8], window_size: 7, image_size: 224, layer_norm_eps: 1e-5 };
    const { source, reads } = onDisk('swin-hf.safetensors', hf);
    const opened = await openCheckpoint(source, hfConfig);
    const header = reads.reduce((a, b) => a + b, 0);
    // The file holds index buffers the model ignores: never read, so not part of what an upload reads.
    expect(opened.dataBytes).toBeLessThan(hf.byteLength - header);
    expect(opened.config).toEqual(loadCheckpoint(hf, hfConfig).config);
    expect([...opened.tensors.keys()].sort()).toEqual([...weights.keys()].sort());
    for (const [name, t] of weights) expect(sameBits(await opened.tensors.get(name)!.read(), t.data), name).toBe(true);
    expect(reads.reduce((a, b) => a + b, 0)).toBe(header + opened.dataBytes);
  });
});

describe('bad files: the messages of the whole-file load', () => {
  const entry = (begin: number, end: number) => ({ dtype: 'F32', shape: [(end - begin) / 4], data_offsets: [begin, end] });
  /** A safetensors file from a header object and a data section of `dataBytes` zero bytes. */
  function raw(header: unknown, dataBytes: number): Uint8Array {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  }
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['truncated', new Uint8Array(5)],
    ['header past the end', raw({ a: entry(0, 4) }, 4).subarray(0, 20)],
    ['offsets past the data', raw({ a: entry(0, 8) }, 4)],
    ['overlap', raw({ a: entry(0, 8), b: entry(4, 12) }, 12)],
    ['no tensors of a model', raw({ a: entry(0, 4) }, 4)],
  ];
  for (const [what, bytes] of cases) {
    test(what, async () => {
      let expected = '';
      try {
        loadCheckpoint(bytes, null);
      } catch (e) {
        expected = (e as Error).message;
      }
      expect(expected).not.toBe('');
      expect(await messageOf(openCheckpoint(bytesSource(bytes), null))).toBe(expected);
      expect(await messageOf(openCheckpoint(onDisk(`${what}.safetensors`, bytes).source, null))).toBe(expected);
    });
  }

  test('a NaN is named under the name the file gives it (a Hugging Face query), when its tensor is read', async () => {
    const json: unknown = JSON.parse(readFileSync(root('tests/fixtures/swin/swin_micro.json'), 'utf8'));
    const { weights } = loadCheckpoint(readFileSync(root('tests/fixtures/swin/swin_micro.safetensors')), json);
    const hf = toSwinHuggingFace(weights);
    const query = [...hf.keys()].find((n) => n.endsWith('attention.self.query.weight'))!;
    hf.get(query)!.data[3] = Number.NaN;
    const bytes = serializeSafetensors([...hf].map(([name, t]) => ({ name, ...t })));
    const hfConfig = { model_type: 'swin', embed_dim: 16, depths: [2, 2, 2, 2], num_heads: [1, 2, 4, 8], window_size: 7, image_size: 224, layer_norm_eps: 1e-5 };
    const opened = await openCheckpoint(bytesSource(bytes), hfConfig);
    const qkv = [...opened.tensors.entries()].filter(([n]) => n.endsWith('attn.qkv.weight'));
    const messages = await Promise.all(qkv.map(([, t]) => t.read().then(() => '', (e: Error) => e.message)));
    expect(messages.filter(Boolean)).toEqual([`checkpoint: ${query} holds NaN at index 3`]);
    expect(() => loadCheckpoint(bytes, hfConfig)).toThrow(`checkpoint: ${query} holds NaN at index 3`);
  });
});

describe('a file that changes after it was loaded fails to read, rather than give other weights', () => {
  test('on disk: another modification time or size, or no file at all', async () => {
    const path = join(dir, 'changing.safetensors');
    writeFileSync(path, new Uint8Array(64).fill(1));
    utimesSync(path, 1_000, 1_000);
    const source = fileSource(path, statSync(path));
    expect(await source.read(8, 16)).toEqual(new Uint8Array(8).fill(1));
    const changed = (why: string) => `checkpoint: ${path} could not be read at bytes 8 to 16 (${why}); it may have been changed, moved or deleted since it was loaded`;
    writeFileSync(path, new Uint8Array(64).fill(2)); // the same size, written later
    expect(await messageOf(source.read(8, 16))).toBe(changed('its size or modification time differ'));
    utimesSync(path, 1_000, 1_000);
    expect(await source.read(8, 16)).toEqual(new Uint8Array(8).fill(2)); // what the check compares
    unlinkSync(path);
    expect(await messageOf(source.read(8, 16))).toBe(changed('ENOENT'));
  });

  test('by byte ranges: each asks If-Range the first validator; a whole body or another ETag fails', async () => {
    const url = 'http://example.test/model.safetensors';
    let version = { etag: '"v1"', bytes: new Uint8Array(64).fill(1) };
    const asked: (string | null)[] = [];
    vi.stubGlobal('fetch', async (_: string, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      asked.push(headers.get('if-range'));
      const [, b, e] = /^bytes=(\d+)-(\d+)$/.exec(headers.get('range')!)!.map(Number);
      // As a server does: a range only while If-Range matches (or is absent), else the whole file.
      if (headers.has('if-range') && headers.get('if-range') !== version.etag) return new Response(version.bytes, { status: 200, headers: { etag: version.etag } });
      return new Response(version.bytes.slice(b, e! + 1), { status: 206, headers: { etag: version.etag, 'content-range': `bytes ${b}-${e}/64` } });
    });
    try {
      const source = (await rangeSource(url))!;
      expect(source.size).toBe(64);
      expect(await source.read(8, 16)).toEqual(new Uint8Array(8).fill(1));
      expect(asked).toEqual([null, '"v1"']);
      version = { etag: '"v2"', bytes: new Uint8Array(64).fill(2) };
      expect(await messageOf(source.read(8, 16))).toBe(`could not download ${url}: bytes 8 to 16 came back from another version of the file (HTTP 200); it may have been changed, moved or deleted since it was loaded`);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
