// The pieces of bad-input handling that need no GPU: the duplicate-key scan of a safetensors
// header, image sizes read from file headers, which file a loading error names, and the one
// line the command-line scripts print for an error that crossed the page boundary.
import { describe, expect, test } from 'vitest';
import { plainMessage } from '../scripts/errors.js';
import { declaredDimensions } from '../src/image/dimensions';
import { formatBytes, formatCount } from '../src/limits';
import { PRESETS, type ViTConfig } from '../src/models/vit/config';
import { vit } from '../src/models/vit/family';
import { attributeLoadError } from '../src/weights/attribute';
import { checkpointLimit, loadCheckpoint } from '../src/weights/load';
import { parseConfigJson } from '../src/weights/config';
import { firstNonFinite } from '../src/weights/finite';
import { firstDuplicateKey, parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';

describe('firstDuplicateKey', () => {
  test('finds a key twice at the top level and inside an entry, naming the entry', () => {
    expect(firstDuplicateKey('{"a":1,"b":2,"a":3}')).toEqual({ key: 'a' });
    expect(firstDuplicateKey('{"a":{"x":1,"y":[{"x":1}],"x":2}}')).toEqual({ key: 'x', in: 'a' });
  });
  test('compares keys as JSON.parse sees them, escapes included', () => {
    expect(firstDuplicateKey('{"a":1,"\\u0061":2}')).toEqual({ key: 'a' });
    expect(firstDuplicateKey('{"a\\"b":1,"a\\\\":2,"a\\"b":3}')).toEqual({ key: 'a"b' });
  });
  test('equal keys in different objects, strings holding braces, commas and quotes, and arrays pass', () => {
    expect(firstDuplicateKey('{"a":{"k":1},"b":{"k":1},"c":"{\\"a\\":1, \\"a\\":2}","d":[1,"a",{"a":1},{"a":2}]}')).toBeUndefined();
    expect(firstDuplicateKey('[]')).toBeUndefined();
  });
  test('a safetensors header with a tensor twice is refused by name', () => {
    const text = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const json = new TextEncoder().encode(text);
    const bytes = new Uint8Array(8 + json.length + 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    expect(() => parseSafetensors(bytes)).toThrow('safetensors: key "w" appears twice in the header');
  });
  // Speed belongs to a benchmark; this checks that a header with 200,000 keys is scanned whole,
  // to the duplicate at its very end (a scan of pairs would not finish within the test's time).
  test('a header of 200,000 keys: no duplicate, and one at the very end', () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `"tensor.${i}":{"shape":[${i}]}`);
    expect(firstDuplicateKey(`{${keys.join(',')}}`)).toBeUndefined();
    expect(firstDuplicateKey(`{${keys.join(',')},"tensor.0":{"shape":[1]}}`)).toMatchObject({ key: 'tensor.0' });
  });
});

describe('declaredDimensions', () => {
  const bytes = (...xs: (number | string)[]) => new Uint8Array(xs.flatMap((x) => (typeof x === 'string' ? [...x].map((c) => c.charCodeAt(0)) : [x])));
  test('PNG (IHDR, big-endian)', () => {
    expect(declaredDimensions(bytes(0x89, 'PNG\r\n\x1a\n', 0, 0, 0, 13, 'IHDR', 0, 1, 0x86, 0xa0, 0, 0, 0, 3))).toEqual({ width: 100000, height: 3 });
  });
  test('JPEG: skips APP segments to the frame header; a progressive SOF2 counts, DHT does not', () => {
    const app1 = [0xff, 0xe1, 0, 6, 1, 2, 3, 4];
    const dht = [0xff, 0xc4, 0, 4, 0, 0];
    const sof2 = [0xff, 0xc2, 0, 11, 8, 0x01, 0x00, 0x02, 0x00, 1, 1, 0x11, 0];
    expect(declaredDimensions(bytes(0xff, 0xd8, ...app1, ...dht, ...sof2))).toEqual({ width: 512, height: 256 });
    expect(declaredDimensions(bytes(0xff, 0xd8, ...app1))).toBeUndefined(); // no frame header in what was read
  });
  test('GIF, BMP (top-down), WebP (VP8X, VP8L)', () => {
    expect(declaredDimensions(bytes('GIF89a', 0x10, 0x27, 0x20, 0x4e))).toEqual({ width: 10000, height: 20000 });
    const bmp = new Uint8Array(26);
    bmp.set(bytes('BM'));
    new DataView(bmp.buffer).setUint32(14, 40, true);
    new DataView(bmp.buffer).setInt32(18, 300, true);
    new DataView(bmp.buffer).setInt32(22, -200, true);
    expect(declaredDimensions(bmp)).toEqual({ width: 300, height: 200 });
    expect(declaredDimensions(bytes('RIFF', 0, 0, 0, 0, 'WEBP', 'VP8X', 10, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0x0f, 0x27, 0))).toEqual({ width: 65536, height: 10000 });
    const bits = (4000 - 1) | ((3000 - 1) << 14);
    expect(declaredDimensions(bytes('RIFF', 0, 0, 0, 0, 'WEBP', 'VP8L', 0, 0, 0, 0, 0x2f, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, bits >>> 24))).toEqual({ width: 4000, height: 3000 });
  });
  test('anything else: undefined (the decoder decides)', () => {
    expect(declaredDimensions(bytes('hello, world'))).toBeUndefined();
    expect(declaredDimensions(bytes(0x89, 'PNG'))).toBeUndefined();
  });
});

describe('messages', () => {
  test('a loading error names the file at fault', () => {
    const files = { checkpoint: 'runs/model.safetensors', config: 'runs/model.json' };
    expect(attributeLoadError('checkpoint: blocks.3.mlp.fc1.weight holds NaN at index 1234', files)).toBe('checkpoint runs/model.safetensors: blocks.3.mlp.fc1.weight holds NaN at index 1234');
    expect(attributeLoadError('safetensors: empty file (0 bytes)', files)).toBe('checkpoint runs/model.safetensors: empty file (0 bytes)');
    expect(attributeLoadError('config: not valid JSON (x)', files)).toBe('config runs/model.json: not valid JSON (x)');
    expect(attributeLoadError('config: not valid JSON (x)', { checkpoint: 'm.safetensors' })).toBe('config: not valid JSON (x)');
    expect(attributeLoadError('could not download /m/: HTTP 500', files)).toBe('could not download /m/: HTTP 500');
  });
  test('an error from the page comes down to its own first line', () => {
    const wrapped = new Error('page.evaluate: Error: checkpoint m.safetensors: empty file (0 bytes)\n    at Object.init (http://127.0.0.1:5173/src/cli/page.ts:52:13)');
    expect(plainMessage(wrapped)).toBe('checkpoint m.safetensors: empty file (0 bytes)');
    expect(plainMessage(new Error('Error: Error: x'))).toBe('x');
    expect(plainMessage(new TypeError('TypeError: y is undefined'))).toBe('TypeError: y is undefined');
    expect(plainMessage('')).toBe('unknown error');
  });
  test('empty configs', () => {
    expect(() => parseConfigJson('')).toThrow(/^config: empty file \(0 bytes\)$/);
    expect(() => parseConfigJson(' \n')).toThrow(/^config: empty file \(only white space\)$/);
  });
  test('counts and sizes', () => {
    expect(formatCount(16385)).toBe('16,385');
    expect(formatCount(268435456)).toBe('268,435,456');
    expect(formatBytes(1000)).toBe('1,000 bytes');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0 GiB (3,221,225,472 bytes)');
  });
  test('firstNonFinite finds NaN and both infinities, not large finite values', () => {
    expect(firstNonFinite(new Float32Array([3.4e38, -3.4e38, 0, Infinity]))).toBe(3);
    expect(firstNonFinite([1, -Infinity])).toBe(1);
    expect(firstNonFinite([Number.NaN])).toBe(0);
    expect(firstNonFinite(new Float32Array([1, 2]))).toBe(-1);
  });
});

describe('loadCheckpoint', () => {
  /** A checkpoint of small random-free weights (all 0.01) for `config`. */
  const checkpoint = (config: ViTConfig) => serializeSafetensors(vit.parameterShapes(config).map(([name, shape]) => ({ name, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) })));
  const small = (imageSize: number, tokens: ViTConfig['tokens']): ViTConfig => ({ ...PRESETS['vit-tiny']!, dim: 8, heads: 1, mlpDim: 16, depth: 1, numClasses: 2, patchSize: 16, imageSize, tokens, globalPool: tokens === 'none' ? 'avg' : 'token' });

  test('a model whose own image size is over the token limit is refused at load; one exactly at it loads', () => {
    const over = small(1024, 'cls'); // 64 x 64 patches + 1 = 4,097 tokens
    expect(() => loadCheckpoint(checkpoint(over), over)).toThrow(/^config: imageSize 1024: a 1024x1024 image makes 4,097 tokens \(64x64 patches of 16 px \+ 1\), over the limit of 4,096 tokens per image$/);
    const at = small(1024, 'none'); // 4,096 tokens
    expect(loadCheckpoint(checkpoint(at), at).config.imageSize).toBe(1024);
  });

  test("a caller's size limit is checked before parsing; without one there is none (the adapter's limits apply)", () => {
    const c = small(32, 'cls');
    const bytes = checkpoint(c);
    expect(() => loadCheckpoint(bytes, c, undefined, { maxBytes: 100 })).toThrow(`checkpoint: ${formatBytes(bytes.byteLength)} is over the limit of 100 bytes for one checkpoint`);
    expect((loadCheckpoint(bytes, c, undefined, { maxBytes: bytes.byteLength }).config as ViTConfig).dim).toBe(8);
    expect(checkpointLimit({})).toBe(Infinity);
  });
});
