// Checkpoints streamed to the GPU (weights/load.ts openCheckpoint, Model.stream): read from a Blob
// a tensor at a time, the model gives the same logits as one built from the whole file in memory,
// and reads back bit for bit; through the worker a File is loaded as the demo's picker hands it
// over. A model over the adapter's limits is refused with the tensor and the limit named (a cap
// stands in for a small adapter), and the model loaded before stays.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../src/engine/engine';
import { planForward } from '../src/graph/forward';
import { readTensor } from '../src/gpu/tensor';
import { initWeights } from '../src/models/init';
import { createModel } from '../src/models/registry';
import { PRESETS } from '../src/models/vit/config';
import { vit } from '../src/models/vit/family';
import { exportWeights } from '../src/training/checkpoint';
import { loadCheckpoint } from '../src/weights/load';
import { parseSafetensors } from '../src/weights/safetensors';
import { formatCount } from '../src/limits';
import { blobSource } from '../src/weights/source';
import { startEngineWorker } from '../src/worker/start';
import { testGpu } from './helpers/gpu';
import { messageOf } from './helpers/errors';

const config = { ...PRESETS['fashion-mnist']!, numClasses: 10 };
const weights = initWeights(config, 7);
const bytes = exportWeights(weights, config);
const image = new Float32Array(2 * 784).map((_, i) => Math.sin(i / 7));

/** Logits of the model built from the whole file in memory (loadCheckpoint, Model.create): the reference. */
let reference: number[][];
beforeAll(async () => {
  const gpu = await testGpu();
  const whole = loadCheckpoint(bytes, null);
  const model = createModel(gpu, whole.config, whole.weights);
  const plan = await planForward(model, { batch: 2 });
  plan.run(image);
  const logits = await readTensor(gpu, plan.logits);
  reference = [Array.from(logits.subarray(0, 10)), Array.from(logits.subarray(10, 20))];
  plan.destroy();
  model.destroy();
});

const logitsOf = async (engine: Pick<Engine, 'classifyTensor'>) => (await engine.classifyTensor(image, 2, 28, { logits: true })).map((r) => Array.from(r.logits!));

describe('a checkpoint streamed from a Blob', () => {
  let engine: Engine;
  beforeAll(async () => (engine = await Engine.create()));
  afterAll(() => engine.destroy());

  test('gives the logits of the whole-file load, and reads back from the GPU bit for bit', async () => {
    const progress: number[] = [];
    await engine.loadModel('small', new Blob([bytes as BlobPart]), null, (p) => p.stage === 'upload' && progress.push(p.loaded / p.total!));
    expect(await logitsOf(engine)).toEqual(reference);
    // Progress by tensor bytes, to the whole data section.
    expect(progress.length).toBe(weights.size + 1);
    expect(progress.at(-1)).toBe(1);
    // Its export reads the weights back from the GPU (no host copy is kept).
    const back = parseSafetensors(await engine.exportModel());
    for (const [name, t] of weights) expect(back.get(name), name).toEqual(t.data);
  });

  test('an unreadable file (changed or deleted since it was chosen) is named as such, not as a permission problem', async () => {
    // What Chromium's File does once the file on disk changed: every read fails.
    const gone = {
      size: bytes.byteLength,
      slice: () => ({ arrayBuffer: () => Promise.reject(new DOMException('The requested file could not be read, typically due to permission problems that have occurred after a reference to a file was acquired.', 'NotReadableError')) }),
    } as unknown as Blob;
    expect(await messageOf(engine.loadModel('gone', blobSource(gone, 'big.safetensors'), null)))
      .toBe('checkpoint: big.safetensors could not be read at bytes 0 to 8 (NotReadableError: The requested file could not be read, typically due to permission problems that have occurred after a reference to a file was acquired.); it may have been changed, moved or deleted since it was chosen');
    expect(engine.info().name).toBe('small');
  });
});

describe("the adapter's limits, capped as a small adapter's would be", () => {
  test('a tensor over maxStorageBufferBindingSize is refused by name and limit; the model before stays', async () => {
    const cap = 40_000;
    const engine = await Engine.create({ bufferLimits: { maxStorageBufferBindingSize: cap } });
    try {
      const small = { ...config, dim: 16, heads: 2, mlpDim: 32, depth: 1 };
      await engine.loadModel('fits', exportWeights(initWeights(small, 1), small), null);
      const [name] = vit.parameterShapes(config).find(([, s]) => 4 * s.reduce((a, b) => a * b, 1) > cap)!;
      expect(name).toBe('blocks.0.attn.qkv.weight');
      expect(await messageOf(engine.loadModel('too large', new Blob([bytes as BlobPart]), null)))
        .toBe(`params.${name}: 48.0 KiB (49,152 bytes) exceed the engine's maxStorageBufferBindingSize cap of ${formatCount(cap)} bytes`);
      expect(engine.info().name).toBe('fits');
    } finally {
      engine.destroy();
    }
  });

  test('a tensor over maxBufferSize (no buffer could hold it) is refused by name and limit', async () => {
    const engine = await Engine.create({ bufferLimits: { maxBufferSize: 40_000 } });
    try {
      expect(await messageOf(engine.loadModel('too large', new Blob([bytes as BlobPart]), null)))
        .toBe('params.blocks.0.attn.qkv.weight: 48.0 KiB (49,152 bytes) exceed the engine\'s maxBufferSize cap of 40,000 bytes');
    } finally {
      engine.destroy();
    }
  });

  test('a model larger than maxBufferSize loads across several buffers, with the same logits', async () => {
    const engine = await Engine.create({ bufferLimits: { maxBufferSize: 64 << 10 } });
    try {
      const info = await engine.loadModel('split', new Blob([bytes as BlobPart]), null);
      expect(info.bytes).toBeGreaterThan(2 * (64 << 10));
      expect(await logitsOf(engine)).toEqual(reference);
    } finally {
      engine.destroy();
    }
  });
});

test('through the worker, a File as the picker hands it over', async () => {
  const worker = startEngineWorker();
  try {
    await worker.init();
    const info = await worker.loadModel('picked.safetensors', new File([bytes as BlobPart], 'picked.safetensors'), undefined);
    expect(info.parameters).toBe([...weights.values()].reduce((n, t) => n + t.data.length, 0));
    expect(await logitsOf(worker)).toEqual(reference);
  } finally {
    worker.terminate();
  }
});
