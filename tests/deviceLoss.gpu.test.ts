// Device loss, simulated by destroying the device: an engine on the app's own device tells the app
// and waits for a replacement; an engine on a device of its own re-creates it. Either way the
// model comes back from its host copy and gives the same logits as before.
import { describe, expect, test } from 'vitest';
import { Engine } from '../src/engine/engine';
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
    const lost = new Promise<string>((resolve) => (engine.onDeviceLost = resolve));
    first.destroy();
    expect(await lost).toBeTruthy();
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
    const lost = new Promise<string>((resolve) => (engine.onDeviceLost = resolve));
    // What a driver reset does, done from outside: the engine did not destroy it, so it is lost.
    (engine as unknown as { gpu: { device: GPUDevice } }).gpu.device.destroy();
    await lost;
    expect(await logitsOf(engine)).toEqual(before);
    engine.destroy();
  });
});
