// The GPU check's steps in Node on Dawn (scripts/gpu-check.sh runs each in a process of its own,
// so a crash in one still lets the others report). Built into one file with the WGSL inlined
// (scripts/gpu-check/build.js), so no node_modules travel with it but Dawn's `webgpu`.
//
//   node check.mjs STEP [--small] [--work DIR]
//
// Steps: adapter, golden, forward, train, matmul (each writes DIR/STEP.json), and report (reads
// them and DIR/torch.json, PyTorch's figures, and prints the table). --small: sizes that finish
// on SwiftShader in minutes (batch 1 and 2, ViT-B/16 with one block, one timed training step,
// matmul 512^3).
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { timeMatmul, matmulKernels } from '../../src/bench/kernels';
import { timeForward } from '../../src/bench/models';
import { timeTrainingStep } from '../../src/bench/training';
import type { Gpu } from '../../src/gpu/device';
import { readTensor } from '../../src/gpu/tensor';
import { planForward } from '../../src/graph/forward';
import { initWeights } from '../../src/models/init';
import { createModel, PRESETS, type AnyConfig } from '../../src/models/registry';
import { PRESETS as VIT_PRESETS } from '../../src/models/vit/config';
import { createNodeGpu, pollGpuGently } from '../../src/node';
import { parseSafetensors } from '../../src/weights/safetensors';
import { loadCheckpoint } from '../../src/weights/load';
import { relL2 } from '../../tests/helpers/compare';
import { F16_WEIGHTS_TOL, GOLDEN_REL_L2 } from '../../tests/tolerances';

const args = process.argv.slice(2);
const step = args[0] ?? '';
const small = args.includes('--small');
const workAt = args.indexOf('--work');
const work = workAt >= 0 ? args[workAt + 1]! : 'gpu-check/run';

/** The models timed, by the name timm gives them (the PyTorch side times the same names). */
const MODELS: { name: string; timm: string; config: AnyConfig }[] = [
  { name: 'DeiT-tiny', timm: 'deit_tiny_patch16_224', config: PRESETS['deit-tiny'] },
  small
    ? { name: 'ViT-B/16, 1 block', timm: 'vit_base_patch16_224', config: { ...VIT_PRESETS['vit-base'], depth: 1 } }
    : { name: 'ViT-B/16', timm: 'vit_base_patch16_224', config: PRESETS['vit-base'] },
];
const SIZES = small ? { batches: [1, 2], trainBatch: 2, trainSteps: 1, matmul: 512 } : { batches: [1, 8, 32], trainBatch: 32, trainSteps: 3, matmul: 4096 };

const log = (line: string): void => console.log(line);
const save = (name: string, value: unknown): void => writeFileSync(join(work, `${name}.json`), JSON.stringify(value));
const load = <T>(name: string): T | undefined => (existsSync(join(work, `${name}.json`)) ? (JSON.parse(readFileSync(join(work, `${name}.json`), 'utf8')) as T) : undefined);
const readFile = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

const top5 = (logits: ArrayLike<number>): number[] => Array.from(logits, (v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]).slice(0, 5).map(([, i]) => i);

async function gpuForStep(): Promise<Gpu> {
  const gpu = await createNodeGpu();
  // Dawn's busy polling takes a core from a CPU adapter; a real GPU keeps it (see pollGpuGently).
  if (gpu.isSoftware) pollGpuGently();
  return gpu;
}

async function adapter(): Promise<void> {
  const gpu = await gpuForStep();
  const { vendor, architecture, device, description } = gpu.adapterInfo;
  const limits = gpu.device.limits;
  log(`adapter: vendor "${vendor}", architecture "${architecture}", device "${device}", description "${description}"${gpu.isSoftware ? ' (software)' : ''}`);
  log(`features: ${[...gpu.device.features].sort().join(', ')}`);
  log(`limits: maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, maxBufferSize ${limits.maxBufferSize}, ` +
    `maxComputeWorkgroupStorageSize ${limits.maxComputeWorkgroupStorageSize}, maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}`);
  log(`matmul kernel chosen: ${gpu.matmulVariant}`);
  save('adapter', { name: gpu.name, vendor, architecture, device, description, software: gpu.isSoftware });
  // A run meant for a real GPU that lands on a CPU adapter would time the wrong thing.
  if (gpu.isSoftware && !small) throw new Error(`Dawn chose a software adapter (${gpu.name}), not the GPU: see the Vulkan step's lines above`);
}

/** Logits (and features, attention) of one checkpoint on one input, against a golden file. */
async function golden(): Promise<void> {
  const gpu = await gpuForStep();
  const failures: string[] = [];
  const goldenFile = parseSafetensors(readFile('tests/fixtures/deit_tiny_golden.safetensors'));
  const input = goldenFile.get('input');

  // DeiT-tiny: the repository's F16 weights against timm's F32 golden outputs.
  const deit = loadCheckpoint(readFile('public/models/deit-tiny/model.safetensors'), JSON.parse(readFileSync('public/models/deit-tiny/config.json', 'utf8')));
  const model = createModel(gpu, deit.config, deit.weights);
  const plan = await planForward(model, { batch: 2, attention: true });
  plan.run(input);
  const logits = await readTensor(gpu, plan.logits);
  const features = await readTensor(gpu, plan.features);
  const layers = Array.from(goldenFile.get('attention_layers'));
  const attention = goldenFile.get('attention');
  const per = 3 * 197 * 197;
  let attentionErr = 0;
  for (const [i, l] of layers.entries()) {
    const probs = await readTensor(gpu, plan.blocks[l]!.probs!);
    for (let b = 0; b < 2; b++) {
      const ref = attention.subarray((b * layers.length + i) * per, (b * layers.length + i + 1) * per);
      for (let j = 0; j < per; j++) attentionErr = Math.max(attentionErr, Math.abs(probs[b * per + j]! - ref[j]!));
    }
  }
  const ref = goldenFile.get('logits');
  const logitsErr = relL2(logits, ref);
  const featuresErr = relL2(features, goldenFile.get('features'));
  const sameTop5 = [0, 1].every((b) => top5(logits.subarray(b * 1000, (b + 1) * 1000)).join() === top5(ref.subarray(b * 1000, (b + 1) * 1000)).join());
  log(`DeiT-tiny (F16 weights) against timm's F32 golden: logits rel L2 ${logitsErr.toExponential(2)} (bound ${F16_WEIGHTS_TOL.logitsRelL2}), ` +
    `features ${featuresErr.toExponential(2)} (bound ${F16_WEIGHTS_TOL.featuresRelL2}), attention of layers ${layers.join(', ')} max abs ${attentionErr.toExponential(2)} ` +
    `(bound ${F16_WEIGHTS_TOL.attentionAbs}), top-5 ${sameTop5 ? 'identical' : 'DIFFERENT'}`);
  if (!(logitsErr < F16_WEIGHTS_TOL.logitsRelL2 && featuresErr < F16_WEIGHTS_TOL.featuresRelL2 && attentionErr < F16_WEIGHTS_TOL.attentionAbs && sameTop5)) failures.push('DeiT-tiny');
  // Our logits, for the comparison with timm's on the same weights, on this GPU (report step).
  save('golden', { logits: Array.from(logits) });
  plan.destroy();
  model.destroy();

  // timm's micro fixtures, F32 weights: the tight bar.
  const micro: { name: string; dir: string; file: string; input?: string }[] = [
    { name: 'DeiT-III micro', dir: 'tests/fixtures/deit3', file: 'deit3_micro' },
    { name: 'ViT with registers micro', dir: 'tests/fixtures/vitreg', file: 'vit_reg_micro', input: 'vit_reg_micro_input' },
    { name: 'Swin micro', dir: 'tests/fixtures/swin', file: 'swin_micro' },
  ];
  for (const m of micro) {
    const ckpt = loadCheckpoint(readFile(`${m.dir}/${m.file}.safetensors`), JSON.parse(readFileSync(`${m.dir}/${m.file}.json`, 'utf8')));
    const want = parseSafetensors(readFile(`${m.dir}/${m.file}_golden.safetensors`));
    const x = m.input ? parseSafetensors(readFile(`${m.dir}/${m.input}.safetensors`)).get('input') : input;
    const fixture = createModel(gpu, ckpt.config, ckpt.weights);
    const p = await planForward(fixture, { batch: 2 });
    p.run(x);
    const err = relL2(await readTensor(gpu, p.logits), want.get('logits'));
    log(`${m.name} (F32 weights) against timm's float64 logits: rel L2 ${err.toExponential(2)} (bound ${GOLDEN_REL_L2})`);
    if (!(err < GOLDEN_REL_L2)) failures.push(m.name);
    p.destroy();
    fixture.destroy();
  }
  if (failures.length) throw new Error(`golden outputs out of bounds: ${failures.join(', ')}`);
}

interface ForwardRow { name: string; timm: string; batch: number; gpuMsPerImage: number; endToEndMsPerImage: number; method: string }

async function forward(): Promise<void> {
  const gpu = await gpuForStep();
  const rows: ForwardRow[] = [];
  const largest = Math.max(...SIZES.batches);
  const input = new Float32Array(largest * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));
  for (const m of MODELS) {
    // Random weights: the time does not depend on their values (ViT-B never travels as weights).
    const model = createModel(gpu, m.config, initWeights(m.config, 1));
    for (const batch of SIZES.batches) {
      const t = await timeForward(model, m.name, batch, input, undefined, log);
      rows.push({ name: m.name, timm: m.timm, batch, ...t });
      save('forward', rows);
    }
    model.destroy();
  }
}

async function train(): Promise<void> {
  const gpu = await gpuForStep();
  const batch = SIZES.trainBatch;
  const t = await timeTrainingStep(gpu, { name: 'DeiT-tiny (224 px), every parameter', config: PRESETS['deit-tiny'], batch }, log, SIZES.trainSteps);
  save('train', { name: 'DeiT-tiny', timm: 'deit_tiny_patch16_224', batch, ...t });
}

async function matmulStep(): Promise<void> {
  const gpu = await gpuForStep();
  const n = SIZES.matmul;
  const timings = await timeMatmul(gpu, { name: `${n}^3`, M: n, N: n, K: n }, matmulKernels(gpu));
  log(`adapter's matmul variant: ${gpu.matmulVariant}`);
  for (const t of timings) log(`matmul ${n}^3, kernel ${t.kernel}: ${t.gflops.toFixed(1)} GFLOP/s (${t.ms.toFixed(2)} ms, ${t.method})`);
  const best = timings.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  save('matmul', { n, best });
}

interface TorchResults {
  skipped?: string;
  device?: string;
  forward?: { timm: string; batch: number; ms_per_image: number }[];
  train?: { batch: number; images_per_second: number };
  matmul?: { n: number; gflops: number };
  golden_logits?: number[];
  error?: string;
}

function report(): void {
  const torch = load<TorchResults>('torch') ?? { skipped: 'no PyTorch figures (torch.json missing)' };
  const adapterInfo = load<{ name: string }>('adapter');
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  const fmt = (v: number | undefined, digits = 2) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
  out(`ours: vitgpu on Dawn/Vulkan, ${adapterInfo?.name ?? 'adapter unknown'}; PyTorch: ${torch.device ?? torch.skipped ?? torch.error ?? '-'} (eager fp32, TF32 off)`);
  out('forward, ms per image (ours: GPU timestamps of the whole forward; PyTorch: wall clock with cuda synchronize); every ratio is our time over PyTorch\'s (above 1: we are slower); * wall clock (no timestamps)');
  out(`${'model'.padEnd(20)} ${'batch'.padStart(5)} ${'ours'.padStart(10)} ${'PyTorch'.padStart(10)} ${'ratio'.padStart(8)}`);
  for (const r of load<ForwardRow[]>('forward') ?? []) {
    const theirs = torch.forward?.find((t) => t.timm === r.timm && t.batch === r.batch)?.ms_per_image;
    // Where the adapter gave no timestamps, ours is wall clock too: marked with a star.
    const ours = `${fmt(r.gpuMsPerImage, 3)}${r.method === 'gpu-timestamps' ? '' : '*'}`;
    out(`${r.name.padEnd(20)} ${String(r.batch).padStart(5)} ${ours.padStart(10)} ${fmt(theirs, 3).padStart(10)} ${fmt(theirs && r.gpuMsPerImage / theirs).padStart(8)}`);
  }
  const training = load<{ batch: number; imagesPerSecond: number }>('train');
  if (training) {
    const theirs = torch.train?.images_per_second;
    out(`training step (DeiT-tiny, batch ${training.batch}, AdamW; wall clock): ours ${fmt(training.imagesPerSecond)} images/s, PyTorch ${fmt(theirs)} images/s, ratio ${fmt(theirs && theirs / training.imagesPerSecond)}`);
  }
  const mm = load<{ n: number; best: { kernel: string; gflops: number } }>('matmul');
  if (mm) {
    const theirs = torch.matmul?.gflops;
    out(`matmul ${mm.n}^3: ours ${fmt(mm.best.gflops, 1)} GFLOP/s (${mm.best.kernel}, the best of our kernels), PyTorch ${fmt(theirs, 1)} GFLOP/s, ratio ${fmt(theirs && theirs / mm.best.gflops)}`);
  }
  const goldenOurs = load<{ logits: number[] }>('golden');
  let failed = false;
  if (goldenOurs && torch.golden_logits) {
    const err = relL2(goldenOurs.logits, torch.golden_logits);
    const same = [0, 1].every((b) => top5(goldenOurs.logits.slice(b * 1000, (b + 1) * 1000)).join() === top5(torch.golden_logits!.slice(b * 1000, (b + 1) * 1000)).join());
    failed = !(err < GOLDEN_REL_L2 && same);
    out(`golden on this GPU: our DeiT-tiny logits against timm's (the same F16 weights, fp32, the golden input): rel L2 ${err.toExponential(2)} (bound ${GOLDEN_REL_L2}), top-5 ${same ? 'identical' : 'DIFFERENT'}${failed ? ' FAILED' : ''}`);
  } else {
    out(`golden on this GPU against timm: not compared (${goldenOurs ? 'no timm logits' : 'no logits of ours'})`);
  }
  for (const line of lines) log(line);
  writeFileSync(join(work, 'table.txt'), `${lines.join('\n')}\n`);
  if (failed) throw new Error('our logits differ from timm\'s on this GPU');
}

const STEPS: Record<string, () => Promise<void> | void> = { adapter, golden, forward, train, matmul: matmulStep, report };

try {
  const run = STEPS[step];
  if (!run) throw new Error(`unknown step "${step}"; steps: ${Object.keys(STEPS).join(', ')}`);
  mkdirSync(work, { recursive: true });
  await run();
  // Dawn's device threads can keep the process alive after the work is done.
  process.exit(0);
} catch (e) {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
