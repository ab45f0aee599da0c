import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';

/** A file from a header object and raw data bytes. */
function file(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const u16 = (...xs: number[]) => new Uint8Array(new Uint16Array(xs).buffer);

describe('safetensors', () => {
  test('F32 round trip keeps names, order, shapes, values and metadata; header padded to 8 bytes', () => {
    const a = Float32Array.from([1, -2.5, 3e-8, 65504]);
    const b = Float32Array.from([Math.PI]);
    const bytes = serializeSafetensors([{ name: 'b', shape: [1], data: b }, { name: 'a', shape: [2, 2], data: a }], { note: 'héllo' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const st = parseSafetensors(bytes);
    expect(st.names()).toEqual(['b', 'a']);
    expect(st.entries.get('a')!.shape).toEqual([2, 2]);
    expect(Array.from(st.get('a'))).toEqual(Array.from(a));
    expect(Array.from(st.get('b'))).toEqual(Array.from(b));
    expect(st.metadata.note).toBe('héllo');
  });

  test('F16, BF16 and F64 are converted to f32', () => {
    const f16 = u16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x3555);
    const bf16 = u16(0x3f80, 0xc0a0, 0x4049);
    const f64 = new Uint8Array(Float64Array.from([0.1, -1e300]).buffer);
    const data = new Uint8Array([...f16, ...bf16, ...f64]);
    const st = parseSafetensors(file({
      h: { dtype: 'F16', shape: [7], data_offsets: [0, 14] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [14, 20] },
      d: { dtype: 'F64', shape: [2], data_offsets: [20, 36] },
    }, data));
    expect(Array.from(st.get('h'))).toEqual([1, -2, 65504, 2 ** -24, Infinity, -Infinity, Math.fround(0.333251953125)]);
    expect(Array.from(st.get('b'))).toEqual([1, -5, 3.140625]);
    expect(Array.from(st.get('d'))).toEqual([Math.fround(0.1), -Infinity]);
  });

  test('the DeiT-tiny checkpoint parses: 152 tensors, 5,717,416 parameters', () => {
    const st = parseSafetensors(readFileSync('public/models/deit-tiny/model.safetensors'));
    expect(st.names()).toHaveLength(152);
    expect(st.names().reduce((n, k) => n + st.get(k).length, 0)).toBe(5_717_416);
  });

  test.each([
    ['a truncated file', new Uint8Array(5), /truncated: 5 bytes/],
    ['a header length over the limit', (() => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 1n << 33n, true); return b; })(), /header length 8589934592 exceeds the limit/],
    ['a header past the end', (() => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 100n, true); return b; })(), /header length 100 runs past the end of the file \(16 bytes\)/],
    ['a header that is not JSON', file({}, new Uint8Array()).fill(0x7b, 8), /header is not valid UTF-8 JSON/],
    ['an unknown dtype', file({ x: { dtype: 'I4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /tensor x: unsupported dtype "I4"/],
    ['a bad shape', file({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor x: shape \[-1\] is not a list of non-negative integers/],
    ['reversed offsets', file({ x: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)), /tensor x: data_offsets \[4, 0\] are reversed/],
    ['offsets past the data', file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)), /tensor x: data_offsets \[0, 8\] run past the end of the data \(4 bytes\)/],
    ['a size that does not match the shape', file({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor x: 8 bytes of data for F32 shape \[3\], which needs 12/],
    ['overlapping tensors', file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /tensors x and y overlap/],
  ])('rejects %s by name', (_, bytes, pattern) => {
    expect(() => parseSafetensors(bytes)).toThrow(pattern);
  });
});
