// safetensors: an 8-byte little-endian header length N, N bytes of JSON header mapping names to
// {dtype, shape, data_offsets: [begin, end]} (offsets into the data section that follows) and an
// optional __metadata__ string map. Everything is validated before any tensor is read, so a
// truncated or hostile file fails with a message that names the problem. DOM-free: only
// DataView, TextDecoder and TextEncoder.

export type Dtype = 'F32' | 'F16' | 'BF16' | 'F64';
const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
/** The reference implementation's limit; a larger header is a corrupt or hostile file. */
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

export interface TensorToWrite { shape: readonly number[]; data: Float32Array }

function fail(message: string): never {
  throw new Error(`safetensors: ${message}`);
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const isDim = (d: unknown): d is number => Number.isInteger(d) && (d as number) >= 0;

/** The header of a safetensors file: its tensors, its metadata, and where its data section starts. */
export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file (tensor offsets count from here). */
  dataStart: number;
}

/** Where a file's bytes come from: all in memory, a Blob (read by slices), a file on disk. */
export interface ByteSource {
  readonly size: number;
  /** Bytes [begin, end) of the file. */
  read(begin: number, end: number): Promise<Uint8Array>;
}

/**
 * The JSON header's length from the file's first 8 bytes, checked against the file's size and the
 * header limit. `first` holds at least the first 8 bytes when the file has them.
 */
function headerLength(first: Uint8Array, fileSize: number, maxHeaderBytes = MAX_HEADER_BYTES): number {
  if (fileSize === 0) fail('empty file (0 bytes)');
  if (fileSize < 8) fail(`truncated: ${fileSize} bytes, but the file must start with an 8-byte header length`);
  // A u64 beyond 2^53 loses precision in a Number, but is far over any limit either way.
  const length = Number(new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true));
  if (length > maxHeaderBytes) fail(`header length ${length} exceeds the limit of ${maxHeaderBytes} bytes`);
  if (8 + length > fileSize) fail(`header length ${length} runs past the end of the file (${fileSize} bytes)`);
  return length;
}

/** Parses and checks the JSON header (`json`: its bytes) of a file of `fileSize` bytes. */
function parseHeader(json: Uint8Array, fileSize: number): SafetensorsHeader {
  let header: unknown;
  let text: string;
  try {
    // fatal: invalid UTF-8 is an error, not silently replaced characters in tensor names.
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  // JSON.parse keeps the last of two equal keys: a second tensor of one name would silently win.
  const duplicate = firstDuplicateKey(text);
  if (duplicate) fail(`key ${JSON.stringify(duplicate.key)} appears twice in the header${duplicate.in === undefined ? '' : ` (in ${JSON.stringify(duplicate.in)})`}`);

  const dataStart = 8 + json.byteLength;
  const dataBytes = fileSize - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      const ok = typeof raw === 'object' && raw !== null && !Array.isArray(raw) && Object.values(raw).every((v) => typeof v === 'string');
      if (!ok) fail('__metadata__ is not a map of strings to strings');
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`tensor ${name}: entry is not an object`);
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info.dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, info.dtype)) {
      fail(`tensor ${name}: unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const dtype = info.dtype as Dtype;
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every(isDim)) fail(`tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isDim)) {
      fail(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} are not two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`tensor ${name}: data_offsets [${begin}, ${end}] are reversed`);
    if (end > dataBytes) fail(`tensor ${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataBytes} bytes)`);
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) fail(`tensor ${name}: ${end - begin} bytes of data for ${dtype} shape [${shape.join(', ')}], which needs ${expected}`);
    entries.set(name, { name, dtype, shape: [...shape], begin, end });
  }
  // Two tensors sharing bytes would alias each other; sorted by start, each must begin at or
  // after the previous one's end. Empty tensors occupy nothing and cannot overlap.
  const sorted = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.begin < prev.end) fail(`tensors ${prev.name} and ${cur.name} overlap ([${prev.begin}, ${prev.end}] and [${cur.begin}, ${cur.end}])`);
  }
  return { entries, metadata, dataStart };
}

/** A tensor's bytes (`raw`, exactly its data_offsets' range) as float32: F16, BF16 and F64 converted. */
export function decodeTensor(e: SafetensorsEntry, raw: Uint8Array): Float32Array {
  const n = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(n);
  if (e.dtype === 'F32') {
    // A byte copy: the data section need not be 4-byte aligned, so no Float32Array view on it.
    if (littleEndianHost) new Uint8Array(out.buffer).set(raw.subarray(0, 4 * n));
    else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (e.dtype === 'F64') {
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
  } else if (e.dtype === 'BF16') {
    // bf16 is the high half of an f32: shift the bits into place (NaN, inf, subnormals included).
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = view.getUint16(2 * i, true) << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  }
  return out;
}

/**
 * Reads and checks the header of the file `source` holds, reading only its first 8 + N bytes:
 * the tensors are read later, one at a time, with `readTensor`.
 */
export async function readSafetensorsHeader(source: ByteSource, options: { maxHeaderBytes?: number } = {}): Promise<SafetensorsHeader> {
  const first = source.size >= 8 ? await source.read(0, 8) : new Uint8Array(8);
  const length = headerLength(first, source.size, options.maxHeaderBytes);
  return parseHeader(await source.read(8, 8 + length), source.size);
}

/** One tensor of a file whose header was read, as float32. */
export async function readTensor(source: ByteSource, header: SafetensorsHeader, e: SafetensorsEntry): Promise<Float32Array> {
  return decodeTensor(e, await source.read(header.dataStart + e.begin, header.dataStart + e.end));
}

/** A whole file in memory: the header checked at once, tensors converted when asked for. */
export function parseSafetensors(input: ArrayBuffer | Uint8Array, options: { maxHeaderBytes?: number } = {}): SafetensorsFile {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const length = headerLength(bytes, bytes.byteLength, options.maxHeaderBytes);
  const { entries, metadata, dataStart } = parseHeader(bytes.subarray(8, 8 + length), bytes.byteLength);
  const get = (name: string): Float32Array => {
    const e = entries.get(name);
    if (!e) fail(`no tensor named ${name}`);
    return decodeTensor(e, bytes.subarray(dataStart + e.begin, dataStart + e.end));
  };
  return { entries, metadata, has: (n) => entries.has(n), names: () => [...entries.keys()], get };
}

/**
 * The first key that appears twice in one object of a JSON text, with the key of the object it is
 * in (undefined at the top level), or undefined when there is none. `text` must be valid JSON (it
 * is only scanned, in one pass: a stack of key sets, one per open object). Keys are compared after
 * unescaping, as JSON.parse sees them ("a" and "\u0061" are one key).
 */
export function firstDuplicateKey(text: string): { key: string; in?: string } | undefined {
  // One frame per open object or array: its keys so far (arrays: null) and its own key.
  const stack: { keys: Set<string> | null; name?: string }[] = [];
  let expectKey = false;
  let lastKey: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, ...(top.name !== undefined && { in: top.name }) };
        top.keys.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      stack.push({ keys: c === 0x7b ? new Set() : null, name: parent?.keys ? lastKey : parent?.name });
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = !!stack[stack.length - 1]?.keys;
    }
  }
  return undefined;
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE half bits to a number: every f16 value, subnormals, infinities and NaN, is exact in f32. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals: no implicit leading 1
  if (exp === 31) return frac ? Number.NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Writes F32 tensors in the given order (an array, or an object in its key order), contiguous,
 * with the JSON header padded with spaces to a multiple of 8 bytes as the reference writer does,
 * so the data section starts 8-byte aligned.
 */
export function serializeSafetensors(
  tensors: ({ name: string } & TensorToWrite)[] | Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = Array.isArray(tensors) ? tensors : Object.entries(tensors).map(([name, t]) => ({ name, ...t }));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of list) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) fail(`tensor ${t.name}: name is reserved or used twice`);
    if (!t.shape.every((d) => isDim(d))) fail(`tensor ${t.name}: shape [${t.shape.join(', ')}] is not a list of non-negative integers`);
    const n = numel(t.shape);
    if (n !== t.data.length) fail(`tensor ${t.name}: ${t.data.length} values for shape [${t.shape.join(', ')}], which needs ${n}`);
    header[t.name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  head.set(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let at = 8 + head.byteLength;
  for (const t of list) {
    if (littleEndianHost) out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    else t.data.forEach((v, i) => view.setFloat32(at + 4 * i, v, true));
    at += t.data.byteLength;
  }
  return out;
}
