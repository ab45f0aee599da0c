// Plans against the WebGPU default limits, planned on a recording device (no GPU, nothing
// allocated): what a ViT-B training step at batch 64 would need, the micro-batch chosen to fit,
// DINOv2 at 518 px, the refusal where one image is too much, and every kernel's workgroup.
import { beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_LIMITS, wrapDevice } from '../src/gpu/device';
import { dryRunGpu } from '../src/gpu/dryRun';
import { bindingLimitName, limitName } from '../src/gpu/tensor';
import { fittingMicroBatch, largestFittingBatch, limitsOf, overLimits, planFootprint } from '../src/graph/fit';
import { planForward } from '../src/graph/forward';
import { Model } from '../src/graph/model';
import { fittingGradientShapes, planTraining, trainableNames } from '../src/graph/training';
import { shaders } from '../src/kernels/shaders';
import { MAX_TOKENS_PER_IMAGE, tokenLimitProblem } from '../src/limits';
import { familyOf, PRESETS } from '../src/models/registry';

beforeAll(() => {
  // The usage flags of the WebGPU specification, which Node lacks; the recording device ignores them.
  Object.assign(globalThis, {
    GPUBufferUsage: { MAP_READ: 1, MAP_WRITE: 2, COPY_SRC: 4, COPY_DST: 8, INDEX: 16, VERTEX: 32, UNIFORM: 64, STORAGE: 128, INDIRECT: 256, QUERY_RESOLVE: 512 },
    GPUMapMode: { READ: 1, WRITE: 2 },
  });
});

const MiB128 = DEFAULT_LIMITS.maxStorageBufferBindingSize;
/** A GPU that gives only the defaults (a recording device that refuses what such a GPU would). */
const defaultGpu = () => dryRunGpu(DEFAULT_LIMITS);
const limits = { ...DEFAULT_LIMITS, maxBindingBytes: MiB128 };

describe('ViT-B/16 (vit_base_patch16_224) training at batch 64 under the WebGPU default limits', () => {
  const config = PRESETS['vit-base'];
  const family = familyOf(config);
  const all = trainableNames(family, config, 'all');
  // [64, 197, 3072] floats: an MLP hidden activation at batch 64.
  const mlpBytes = 64 * 197 * 3072 * 4;

  test('its plan, with arenas unsplit, lists what exceeds 128 MiB: the MLP activations, and the parameters and gradients', async () => {
    const f = await planFootprint({ family, config }, { ...limits, maxBufferSize: 2 ** 40 }, 64, (m, B) => planTraining(m, { batch: B }));
    const over = [...f.model, ...f.buffers].filter((r) => r.bytes > MiB128);
    const mlp = over.filter((r) => r.bytes === mlpBytes).map((r) => r.label.replace(/^(backward )?B=64( S=224)? /, ''));
    // Each block keeps its MLP input to GELU (act) and output (h) for the backward pass, which
    // has one pair of gradients for them shared by all blocks.
    expect(mlpBytes).toBe(154_927_104);
    expect(mlp.sort()).toEqual([...Array.from({ length: 12 }, (_, i) => [`blocks.${i}.mlp act`, `blocks.${i}.mlp h`]).flat(), 'd mlp act', 'd mlp h'].sort());
    const rest = over.filter((r) => r.bytes !== mlpBytes);
    const parameterBytes = 86_567_656 * 4;
    expect(rest.map((r) => r.label).sort()).toEqual(['grads#0', 'params#0']);
    for (const r of rest) expect(r.bytes).toBeGreaterThanOrEqual(parameterBytes);
    for (const r of rest) expect(r.bytes).toBeGreaterThan(DEFAULT_LIMITS.maxBufferSize);
    // The next largest are the qkv activations, [64, 197, 2304] floats; attention keeps no
    // [B, heads, T, T] probabilities in training.
    const below = f.buffers.filter((r) => r.bytes <= MiB128).map((r) => r.bytes);
    expect(Math.max(...below)).toBe(64 * 197 * 2304 * 4);
  });

  test('training every parameter is refused by its gradients, bound whole for the global norm at any batch', () => {
    const model = Model.allocate(defaultGpu(), family, config);
    expect(() => fittingGradientShapes(model, all)).toThrow(
      'training: the gradients of 86,567,656 trainable parameters take 330.2 MiB (346,270,624 bytes), over this GPU\'s maxStorageBufferBindingSize of 134,217,728 bytes: train fewer of them (the last blocks, or the head)',
    );
  });

  test('the last 4 blocks train at batch 64 as 2 micro-batches of 32, each within every default limit', async () => {
    const gpu = defaultGpu();
    const model = Model.allocate(gpu, family, config);
    const trainable = { lastBlocks: 4 };
    expect(() => fittingGradientShapes(model, trainableNames(family, config, trainable))).not.toThrow();
    const plan = (m: Model, B: number) => planTraining(m, { batch: B, trainable });
    const at64 = await planFootprint(model, limits, 64, plan);
    expect(overLimits(at64, limits).binding?.bytes).toBe(mlpBytes);
    // 128 MiB holds the MLP activations of 55 images (2,420,736 bytes each); 32 divides 64.
    expect(await largestFittingBatch(gpu, model, 64, plan, 'vit-base')).toBe(55);
    const micro = await fittingMicroBatch(gpu, model, 64, plan, 'vit-base');
    expect(micro).toBe(32);
    expect(overLimits(await planFootprint(model, limits, micro, plan), limits)).toEqual({ binding: undefined, buffer: undefined });
    // And planned on a device with those limits, it completes.
    (await planTraining(model, { batch: micro, trainable })).destroy();
  });
});

describe('DINOv2 ViT-L/14 with registers at 518 px (1369 patches + 1 class + 4 register tokens)', () => {
  const config = PRESETS['dinov2-large-reg4'];
  const family = familyOf(config);

  test('is within the token bound, and one image\'s attention probabilities fit a default binding', async () => {
    const layout = family.planner(config, 1, 518).attention;
    expect(layout.grid[0] * layout.grid[1] + layout.prefixTokens).toBe(1374);
    expect(1374).toBeLessThanOrEqual(MAX_TOKENS_PER_IMAGE);
    expect(tokenLimitProblem(518, layout)).toBeUndefined();
    const gpu = defaultGpu();
    const model = Model.allocate(gpu, family, config);
    // 16 heads x 1374 x 1374 floats = 120,824,064 bytes < 134,217,728.
    const f = await planFootprint(model, limits, 1, (m, B) => planForward(m, { batch: B, attention: true }));
    expect(f.buffers.find((r) => r.label.endsWith('blocks.0.attn probs'))?.bytes).toBe(16 * 1374 * 1374 * 4);
    expect(16 * 1374 * 1374 * 4).toBeLessThan(MiB128);
    expect(await largestFittingBatch(gpu, model, 16, (m, B) => planForward(m, { batch: B, attention: true }), 'dinov2')).toBe(1);
    // Without attention maps the MLP activation (1374 x 4096 floats) bounds the batch.
    expect(await largestFittingBatch(gpu, model, 16, (m, B) => planForward(m, { batch: B }), 'dinov2')).toBe(Math.floor(MiB128 / (1374 * 4096 * 4)));
  });

  test('at 728 px one image\'s attention probabilities exceed a binding: refused, naming the tensor and the limit', async () => {
    const gpu = defaultGpu();
    const model = Model.allocate(gpu, family, config);
    // 52 x 52 patches + 5 tokens = 2709; 16 x 2709^2 floats.
    expect(16 * 2709 ** 2 * 4).toBe(469_675_584);
    await expect(largestFittingBatch(gpu, model, 4, (m, B) => planForward(m, { batch: B, imageSize: 728, attention: true }), 'dinov2-large-reg4 at 728 px')).rejects.toThrow(
      'dinov2-large-reg4 at 728 px: "blocks.0.attn probs" of one image takes 447.9 MiB (469,675,584 bytes), over this GPU\'s maxStorageBufferBindingSize of 134,217,728 bytes',
    );
  });
});

test('every kernel\'s workgroups fit the default limits (16 KiB of workgroup storage, 256 invocations)', () => {
  for (const family of Object.values(shaders)) {
    const consts = new Map([...family.code.matchAll(/const\s+(\w+)\s*:\s*u32\s*=\s*(\d+)u?\s*;/g)].map((m) => [m[1]!, Number(m[2])]));
    const value = (v: string) => (/^\d+u?$/.test(v) ? Number.parseInt(v, 10) : consts.get(v) ?? Number.NaN);
    const bytesOf: Record<string, number> = { f32: 4, u32: 4, i32: 4, 'vec2<f32>': 8, 'vec4<f32>': 16 };
    // Every workgroup variable of the module: at least what any one entry point uses.
    let storage = 0;
    for (const m of family.code.matchAll(/var<workgroup>\s+\w+\s*:\s*array<(.+?),\s*(\w+)>\s*;/g)) {
      expect(bytesOf[m[1]!], `${family.name}: element type ${m[1]}`).toBeDefined();
      storage += bytesOf[m[1]!]! * value(m[2]!);
    }
    expect(storage, family.name).toBeLessThanOrEqual(DEFAULT_LIMITS.maxComputeWorkgroupStorageSize);
    const sizes = [...family.code.matchAll(/@workgroup_size\(([^)]*)\)/g)].map((m) => m[1]!.split(',').map((v) => value(v.trim())));
    expect(sizes.length, family.name).toBeGreaterThan(0);
    for (const size of sizes) {
      expect(size.every(Number.isInteger), `${family.name} @workgroup_size(${size})`).toBe(true);
      expect(size.reduce((a, b) => a * b, 1), family.name).toBeLessThanOrEqual(DEFAULT_LIMITS.maxComputeInvocationsPerWorkgroup);
      expect(size[0]!, family.name).toBeLessThanOrEqual(DEFAULT_LIMITS.maxComputeWorkgroupSizeX);
      expect(size[1] ?? 1, family.name).toBeLessThanOrEqual(DEFAULT_LIMITS.maxComputeWorkgroupSizeY);
    }
  }
});

test('every entry point binds at most 8 storage buffers, the default maxStorageBuffersPerShaderStage', () => {
  let most = 0;
  for (const family of Object.values(shaders)) {
    const storage = [...family.code.matchAll(/var<storage[^>]*>\s+(\w+)/g)].map((m) => m[1]!);
    // Each function's body (WGSL functions do not nest), to follow calls from an entry point.
    const bodies = new Map<string, string>();
    for (const m of family.code.matchAll(/fn\s+(\w+)\s*\(/g)) {
      let depth = 0;
      let end = family.code.indexOf('{', m.index);
      do depth += family.code[end] === '{' ? 1 : family.code[end] === '}' ? -1 : 0;
      while (depth > 0 && ++end < family.code.length);
      bodies.set(m[1]!, family.code.slice(m.index, end + 1));
    }
    const uses = (name: string) => new RegExp(`\\b${name}\\b`);
    for (const [, entry] of family.code.matchAll(/@compute[^;{]*?fn\s+(\w+)/g)) {
      const reached = new Set<string>();
      const visit = (fn: string) => {
        if (reached.has(fn)) return;
        reached.add(fn);
        for (const other of bodies.keys()) if (other !== fn && new RegExp(`\\b${other}\\s*\\(`).test(bodies.get(fn)!)) visit(other);
      };
      visit(entry!);
      // An auto layout binds what the entry point's code names, whether an override disables it or not.
      const bound = storage.filter((v) => [...reached].some((fn) => uses(v).test(bodies.get(fn)!)));
      expect(bound.length, `${family.name} ${entry}: ${bound.join(', ')}`).toBeLessThanOrEqual(DEFAULT_LIMITS.maxStorageBuffersPerShaderStage);
      most = Math.max(most, bound.length);
    }
  }
  // attention_backward_dq with a bias and its gradient (Swin): qkv, out, lse, dout, delta, dqkv, bias, dscores.
  expect(most).toBe(8);
});

describe('buffer caps below the device limits (CreateGpuOptions.bufferLimits)', () => {
  const device = { limits: DEFAULT_LIMITS } as unknown as GPUDevice;
  const info = { vendor: 'test', architecture: '', description: '' } as GPUAdapterInfo;

  test('an explicit undefined cap is no cap; a cap that is not a positive number is refused', () => {
    expect(wrapDevice(device, info, undefined, { maxBufferSize: undefined }).bufferLimits).toEqual({
      maxBufferSize: DEFAULT_LIMITS.maxBufferSize, maxStorageBufferBindingSize: DEFAULT_LIMITS.maxStorageBufferBindingSize,
    });
    expect(() => wrapDevice(device, info, undefined, { maxStorageBufferBindingSize: 0 })).toThrow('bufferLimits.maxStorageBufferBindingSize must be a positive number of bytes, got 0');
  });

  test('plans are sized to the capped maxBufferSize, and the limit is named as the cap', () => {
    const gpu = wrapDevice(device, info, undefined, { maxBufferSize: 1_000_000 });
    expect(limitsOf(gpu).maxBufferSize).toBe(1_000_000);
    expect(limitName(gpu, 'maxBufferSize')).toBe("the engine's maxBufferSize cap of 1,000,000 bytes");
    expect(limitName(gpu, 'maxStorageBufferBindingSize')).toBe("this GPU's maxStorageBufferBindingSize of 134,217,728 bytes");
    expect(bindingLimitName(gpu)).toBe("the engine's maxBufferSize cap of 1,000,000 bytes");
  });
});
