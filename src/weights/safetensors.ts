// safetensors: an 8-byte little-endian header length N, N bytes of JSON header mapping names to
// {dtype, shape, data_offsets: [begin, end]} (offsets into the data section that follows) and an
// optional __metadata__ string map. Everything is validated before any tensor is read, so a
// truncated or hostile file fails with a message that names the problem.

export type Dtype = 'F32' | 'F16' | 'BF16' | 'F64';
const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
const MAX_HEADER_BYTES = 100 * 2 ** 20;

export interface SafetensorsEntry { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }

export interface SafetensorsFile {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  has(name: string): boolean;
  names(): string[];
  /** A float32 copy of a tensor (F16, BF16 and F64 converted). */
  get(name: string): Float32Array;
}

function fail(message: string): never {
  throw new Error(`safetensors: ${message}`);
}

export function parseSafetensors(input: ArrayBuffer | Uint8Array, options: { maxHeaderBytes?: number } = {}): SafetensorsFile {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.byteLength < 8) fail(`truncated: ${bytes.byteLength} bytes, but the file must start with an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const limit = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
  if (headerLength > limit) fail(`header length ${headerLength} exceeds the limit of ${limit} bytes`);
  if (8 + headerLength > bytes.byteLength) fail(`header length ${headerLength} runs past the end of the file (${bytes.byteLength} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${e instanceof Error ? e.message : e})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataBytes = bytes.byteLength - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) fail(`tensor ${name}: entry is not an object`);
    if (typeof info.dtype !== 'string' || !(info.dtype in DTYPE_BYTES)) {
      fail(`tensor ${name}: unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const dtype = info.dtype as Dtype;
    const shape = info.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isInteger(o) || o < 0)) fail(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} are not two non-negative integers`);
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`tensor ${name}: data_offsets [${begin}, ${end}] are reversed`);
    if (end > dataBytes) fail(`tensor ${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataBytes} bytes)`);
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) fail(`tensor ${name}: ${end - begin} bytes of data for ${dtype} shape [${shape.join(', ')}], which needs ${expected}`);
    entries.set(name, { name, dtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.begin < sorted[i - 1]!.end) fail(`tensors ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap`);
  }

  const get = (name: string): Float32Array => {
    const e = entries.get(name);
    if (!e) fail(`no tensor named ${name}`);
    const n = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    const at = dataStart + e.begin;
    const out = new Float32Array(n);
    if (e.dtype === 'F32') {
      // Copy the bytes: the data section need not be 4-byte aligned in memory.
      new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * n));
      if (!littleEndianHost) for (let i = 0; i < n; i++) out[i] = view.getFloat32(at + 4 * i, true);
    } else if (e.dtype === 'F64') {
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(at + 8 * i, true);
    } else if (e.dtype === 'BF16') {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = view.getUint16(at + 2 * i, true) << 16;
    } else {
      for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(at + 2 * i, true));
    }
    return out;
  };
  return { entries, metadata, has: (n) => entries.has(n), names: () => [...entries.keys()], get };
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 31) return frac ? Number.NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Writes F32 tensors in the given order; the header is padded with spaces to 8 bytes. */
export function serializeSafetensors(tensors: { name: string; shape: readonly number[]; data: Float32Array }[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) fail(`tensor ${t.name}: ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[t.name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20); // space padding
  head.set(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let at = 8 + head.byteLength;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
