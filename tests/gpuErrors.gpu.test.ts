// GPU errors become named errors (src/gpu/errors.ts): what the out-of-memory and validation scopes
// catch while planning or running is thrown naming what was being built and how big, and the
// scopes stay balanced on every path, so an outer scope sees exactly its own errors.
import { describe, expect, test } from 'vitest';
import { GpuError, withErrorScopes } from '../src/gpu/errors';
import { planForward } from '../src/graph/forward';
import { PlanBuilder } from '../src/graph/plan';
import { initWeights } from '../src/models/init';
import { PRESETS } from '../src/models/vit/config';
import { createModel } from '../src/models/registry';
import { testGpu } from './helpers/gpu';

const gpu = await testGpu();
const device = gpu.device;

/** A buffer one byte-group past the device's limit: a validation error, as a failed allocation is. */
function tooLarge(): GPUBuffer {
  return device.createBuffer({ label: 'too large', size: device.limits.maxBufferSize + 4, usage: GPUBufferUsage.STORAGE });
}

/** Runs `fn` inside an outer validation scope and returns what that scope caught (null: nothing leaked out). */
async function outerScope(fn: () => Promise<unknown>): Promise<GPUError | null> {
  device.pushErrorScope('validation');
  await fn().catch(() => undefined);
  return device.popErrorScope();
}

describe('GPU error scopes', () => {
  test('a validation error inside is thrown as a GpuError naming the work; nothing reaches an outer scope', async () => {
    let thrown: unknown;
    const leaked = await outerScope(async () => {
      try {
        await withErrorScopes(device, () => 'making a test buffer', async () => tooLarge());
      } catch (e) {
        thrown = e;
      }
    });
    expect(thrown).toBeInstanceOf(GpuError);
    expect((thrown as GpuError).kind).toBe('validation');
    expect((thrown as GpuError).message).toMatch(/^making a test buffer: GPU validation error: /);
    expect(leaked).toBeNull();
  });

  test('without a GPU error, the result or the work\'s own exception passes through', async () => {
    await expect(withErrorScopes(device, () => 'nothing', async () => 42)).resolves.toBe(42);
    await expect(withErrorScopes(device, () => 'nothing', async () => {
      throw new Error('its own problem');
    })).rejects.toThrow(/^its own problem$/);
    // The outer scope catches an error made after the inner scopes closed: they were popped.
    expect(await outerScope(async () => {
      await withErrorScopes(device, () => 'nothing', async () => 1);
      tooLarge();
    })).not.toBeNull();
  });

  test('a plan the GPU refuses fails naming the plan, its size and its largest tensor; its scopes close either way', async () => {
    const c = { ...PRESETS['fashion-mnist'], numClasses: 10 };
    const model = createModel(gpu, c, initWeights(c, 1));
    try {
      let thrown: unknown;
      const leaked = await outerScope(async () => {
        const b = new PlanBuilder(model, 'test plan');
        b.tensor([4, 1000], 'activations');
        b.tensor([10], 'small');
        tooLarge();
        try {
          await b.finish();
        } catch (e) {
          thrown = e;
          await b.abandon();
        }
      });
      expect(thrown).toBeInstanceOf(GpuError);
      expect((thrown as Error).message).toMatch(/^planning test plan \(15\.7 KiB \(16,040 bytes\) in 2 tensors, the largest activations of 15\.6 KiB \(16,000 bytes\)\): GPU validation error: /);
      expect(leaked).toBeNull();
      // An abandoned plan closes its scopes too, and a real plan still works after all this.
      expect(await outerScope(async () => {
        const b = new PlanBuilder(model, 'abandoned');
        await b.abandon();
        tooLarge();
      })).not.toBeNull();
      const plan = await planForward(model, { batch: 2 });
      plan.destroy();
    } finally {
      model.destroy();
    }
  });
});
