// Device loss, simulated by destroying the device behind the engine's back (reason `destroyed`):
// an engine on the app's own device tells the app and waits for a replacement; an engine on a
// device of its own re-creates it. Either way the model comes back from its checkpoint and gives
// the same logits as before. A loss between a classification's forward pass and its readback is
// retried once on a new device, or fails naming the loss. A training lost before its first epoch
// ends starts again from the start by itself. (Through the worker, mid-epoch losses and their
// checkpoints: workerDeviceLoss.gpu.test.ts.)
import { describe, expect, test } from 'vitest';
import { Engine, type DeviceLostEvent } from '../src/engine/engine';
import type { SegmentProgress } from '../src/engine/segment';
import { PRESETS } from '../src/models/vit/config';
import { initWeights } from '../src/models/init';
import { exportWeights } from '../src/training/checkpoint';

const config = { ...PRESETS['fashion-mnist']!, numClasses: 10 };
const checkpoint = exportWeights(initWeights(config, 3), config);
const image = new Float32Array(2 * 784).map((_, i) => Math.sin(i / 5));

async function appDevice(): Promise<GPUDevice> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('no adapter');
  return adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize } });
}

const logitsOf = async (engine: Engine) => (await engine.classifyTensor(image, 2, 28, { logits: true })).map((r) => Array.from(r.logits!));

/** Whether `device` is still alive a moment from now (its lost promise has not settled). */
async function stillAlive(device: GPUDevice): Promise<boolean> {
  return Promise.race([device.lost.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 200))]);
}

describe('device loss', () => {
  test('an app-owned device: the app is told, calls fail until replaceDevice, then the model is back', async () => {
    const first = await appDevice();
    const engine = Engine.fromDevice(first);
    await engine.loadModel('small', checkpoint, null);
    const before = await logitsOf(engine);
    const lost = new Promise<DeviceLostEvent>((resolve) => (engine.onDeviceLost = resolve));
    first.destroy();
    expect(await lost).toMatchObject({ reason: expect.stringMatching(/destroyed/i), recovery: 'replace' });
    await expect(logitsOf(engine)).rejects.toThrow(/^the GPU device was lost \(.+\): hand the engine a new one with replaceDevice\(device\)$/);

    const second = await appDevice();
    await engine.replaceDevice(second);
    expect(await logitsOf(engine)).toEqual(before);
    expect(engine.info().name).toBe('small');
    // The app's device stays the app's: destroying the engine leaves it alive.
    engine.destroy();
    expect(await stillAlive(second)).toBe(true);
    second.destroy();
  });

  test('an engine-owned device is re-created on the next call', async () => {
    const engine = await Engine.create();
    await engine.loadModel('small', checkpoint, null);
    const before = await logitsOf(engine);
    const lost = new Promise<DeviceLostEvent>((resolve) => (engine.onDeviceLost = resolve));
    // What a driver reset does, done from outside: the engine did not destroy it, so it is lost.
    engine.loseDeviceForTest('now');
    expect((await lost).recovery).toBe('recreate');
    expect(await logitsOf(engine)).toEqual(before);
    engine.destroy();
  });

  test('lost between the forward pass and its readback: retried once on a new device, same logits', async () => {
    const engine = await Engine.create();
    await engine.loadModel('small', checkpoint, null);
    const before = await logitsOf(engine);
    const events: DeviceLostEvent[] = [];
    engine.onDeviceLost = (e) => events.push(e);
    engine.loseDeviceForTest('next-submit');
    expect(await logitsOf(engine)).toEqual(before);
    expect(events).toHaveLength(1);
    expect(events[0]!.message).toMatch(/^the GPU device was lost \(.+\): the engine re-creates it at its next call and uploads the model again from its checkpoint, read again$/);
    engine.destroy();
  });

  test('an app-owned device lost mid-classification: the call fails naming the loss', async () => {
    const device = await appDevice();
    const engine = Engine.fromDevice(device);
    await engine.loadModel('small', checkpoint, null);
    engine.loseDeviceForTest('next-submit');
    await expect(logitsOf(engine)).rejects.toThrow(/^classify: the GPU device was lost \(.+\) during the call: hand the engine a new one with replaceDevice\(device\), then call again$/);
    engine.destroy();
  });

  test('a segmentation run lost in its first epoch starts again from the start and ends as an uninterrupted one', async () => {
    const engine = await Engine.create();
    // 2 epochs of 2 steps of 8 images (what is learnt does not matter here, only that it is the same).
    const pixels = (n: number, seed: number) => new Float32Array(n * 784).map((_, i) => Math.sin(i * seed));
    const data = { train: { inputs: pixels(16, 0.37), masks: pixels(16, 0.11).map((v) => (v > 0 ? 1 : 0)), count: 16 }, holdout: { inputs: pixels(8, 0.53), masks: pixels(8, 0.29).map((v) => (v > 0 ? 1 : 0)), count: 8 } };
    const settings = { epochs: 2, batch: 8, lr: 1e-2, warmupEpochs: 0, weightDecay: 0, seed: 0 };
    const head = { hidden: [16], outputs: 1 };
    const whole = await engine.trainSegmentation('fashion-mnist', head, async () => data, settings);
    const events: SegmentProgress[] = [];
    engine.loseDeviceForTest({ afterSteps: 1 }); // the second step is lost
    const resumed = await engine.trainSegmentation('fashion-mnist', head, async () => data, settings, { onProgress: (p) => events.push(p) });
    expect(events.filter((p) => p.recovered).map((p) => p.recovered!.message)).toEqual(['device lost: resumed from the start (no epoch had finished)']);
    expect(resumed.steps).toBe(4);
    for (const k of ['iou', 'dice', 'pixelAccuracy'] as const) expect(resumed.eval![k]).toBeCloseTo(whole.eval![k], 6);
    engine.destroy();
  });
});
