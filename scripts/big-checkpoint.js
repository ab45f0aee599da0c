// node scripts/big-checkpoint.js OUT.safetensors [--depth N] [--seed N]
// Writes a randomly initialised ViT-L-like checkpoint (ViT-L/16 widths, 224 px, 1000 classes; depth
// 40 by default: 2.0e9 bytes of F32) and its config beside it (OUT.json), for trying a large
// load end to end: `npm run classify -- --model OUT.safetensors image.png`. It is written a tensor
// at a time (the header first, computed from the shapes), so it never holds more than one tensor.
// Not a test and never committed: it makes gigabytes.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { loadNodeLibrary } from './node-engine.js';

const args = process.argv.slice(2);
const out = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
/** @param {string} name @param {number} fallback */
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(args[i + 1]);
};
if (!out?.endsWith('.safetensors')) {
  console.error('usage: node scripts/big-checkpoint.js OUT.safetensors [--depth N] [--seed N]');
  process.exit(2);
}

const { load, close } = await loadNodeLibrary();
try {
  const { PRESETS } = /** @type {typeof import('../src/models/vit/config')} */ (await load('/src/models/vit/config.ts'));
  const { familyOf } = /** @type {typeof import('../src/models/registry')} */ (await load('/src/models/registry.ts'));
  const { initWeights } = /** @type {typeof import('../src/models/init')} */ (await load('/src/models/init.ts'));
  const config = { ...PRESETS['vit-large'], depth: option('depth', 40), numClasses: 1000 };
  const seed = option('seed', 0);
  const shapes = familyOf(config).parameterShapes(config);

  // The header as serializeSafetensors writes it: F32, contiguous, padded with spaces to 8 bytes.
  /** @type {Record<string, unknown>} */
  const header = { __metadata__: { format: 'pt', config: JSON.stringify(config) } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(head);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(head.length));

  const fd = openSync(out, 'w');
  try {
    writeSync(fd, length);
    writeSync(fd, head);
    // One tensor at a time, each from its own seed: the same file for the same options.
    for (const [i, [name]] of shapes.entries()) {
      const { data } = /** @type {{ data: Float32Array }} */ (initWeights(config, seed * 100_000 + i, (n) => n === name).get(name));
      writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(out.replace(/\.safetensors$/, '.json'), JSON.stringify(config, null, 2));
  console.error(`wrote ${out}: ${shapes.length} tensors, ${(8 + head.length + offset).toLocaleString('en')} bytes (depth ${config.depth})`);
} finally {
  await close();
}
