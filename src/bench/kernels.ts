// Kernel benchmark: matmul GFLOP/s and attention time (forward and backward, by rows per
// invocation), each beside the simplest correct version of the same kernel, on whatever adapter
// runs it. Prints through `log`; DOM-free.
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/dispatch';
import { createTensor, numel } from '../gpu/tensor';
import { benchmark } from '../gpu/timer';
import { attention, attentionBackward, defaultAttentionRows, maxAttentionRows } from '../kernels/attention';
import { matmul, type MatmulKernel } from '../kernels/matmul';

export interface MatmulCase { name: string; M: number; N: number; K: number; transA?: boolean; transB?: boolean }

const MATMUL_CASES: MatmulCase[] = [
  { name: '1024^3', M: 1024, N: 1024, K: 1024 },
  { name: 'Fashion ViT qkv 64x50 x 64 -> 192', M: 64 * 50, N: 192, K: 64, transB: true },
  { name: 'Fashion ViT fc1 dW 128 x 3200 x 64', M: 128, N: 64, K: 64 * 50, transA: true },
  { name: 'ViT-Ti qkv 8x197 x 192 -> 576', M: 8 * 197, N: 576, K: 192, transB: true },
  { name: 'ViT-B fc1 8x197 x 768 -> 3072', M: 8 * 197, N: 3072, K: 768, transB: true },
  { name: 'ViT-B fc2 8x197 x 3072 -> 768', M: 8 * 197, N: 768, K: 3072, transB: true },
];

const ATTENTION_CASES = [
  { name: 'T=50, 4 heads of 16 (Fashion-MNIST ViT), batch 64', B: 64, T: 50, H: 4, hd: 16 },
  { name: 'T=197, 3 heads of 64 (ViT-Ti), batch 8', B: 8, T: 197, H: 3, hd: 64 },
  { name: 'T=197, 12 heads of 64 (ViT-B), batch 8', B: 8, T: 197, H: 12, hd: 64 },
];

function filled(gpu: Gpu, shape: number[], label: string) {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.5;
  return createTensor(gpu, shape, label, data);
}

/** Every matmul kernel, the one chosen for this adapter first. */
export function matmulKernels(gpu: Gpu): MatmulKernel[] {
  return gpu.matmulVariant === 'registers' ? ['registers8', 'registers', 'tiled', 'naive'] : ['tiled', 'registers8', 'registers', 'naive'];
}

export interface MatmulTiming { kernel: MatmulKernel; gflops: number; ms: number; method: string }

/** GFLOP/s (2*M*N*K / time) of each of `kernels` on one case. */
export async function timeMatmul(gpu: Gpu, c: MatmulCase, kernels: readonly MatmulKernel[]): Promise<MatmulTiming[]> {
  const a = filled(gpu, c.transA ? [c.K, c.M] : [c.M, c.K], 'a');
  const b = filled(gpu, c.transB ? [c.N, c.K] : [c.K, c.N], 'b');
  const out = createTensor(gpu, [c.M, c.N], 'c');
  const timings: MatmulTiming[] = [];
  for (const kernel of kernels) {
    const d = await matmul(gpu, { a, b, c: out, transA: c.transA, transB: c.transB, kernel });
    const t = await benchmark(gpu, [d]);
    timings.push({ kernel, gflops: (2 * c.M * c.N * c.K) / (t.ms * 1e6), ms: t.ms, method: t.method });
    d.destroy();
  }
  for (const t of [a, b, out]) t.buffer.destroy();
  return timings;
}

export async function runMatmulBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  log(`adapter: ${gpu.name}; matmul kernel chosen for it: ${gpu.matmulVariant}`);
  log('matmul GFLOP/s (2*M*N*K / time)');
  for (const c of MATMUL_CASES) {
    const cells = (await timeMatmul(gpu, c, matmulKernels(gpu))).map((t) => `${t.kernel} ${t.gflops.toFixed(2)} (${t.ms.toFixed(1)} ms, ${t.method})`);
    log(`  ${c.name.padEnd(32)} ${cells.join('   ')}`);
  }
}

export async function runAttentionBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  log(`adapter: ${gpu.name}`);
  log('attention ms per call, forward (softmax(QK^T/sqrt(hd))V over all heads) and backward (dQ, dK, dV), by rows per invocation');
  for (const c of ATTENTION_CASES) {
    const D = c.H * c.hd;
    const qkv = filled(gpu, [c.B, c.T, 3 * D], 'qkv');
    const out = createTensor(gpu, [c.B, c.T, D], 'out');
    const lse = createTensor(gpu, [c.B, c.H, c.T], 'lse');
    const dout = filled(gpu, [c.B, c.T, D], 'dout');
    const delta = createTensor(gpu, [c.B, c.H, c.T], 'delta');
    const dqkv = createTensor(gpu, [c.B, c.T, 3 * D], 'dqkv');
    const rowChoices = [8, 4, 2, 1].filter((r) => r <= maxAttentionRows(c.hd));
    const cells: string[] = [];
    const time = async (what: string, dispatches: Dispatch[]) => {
      const t = await benchmark(gpu, dispatches);
      cells.push(`${what} ${t.ms.toFixed(2)}`);
      for (const d of dispatches) d.destroy();
      return t.method;
    };
    for (const rows of rowChoices) await time(`fused rows=${rows}`, [await attention(gpu, { qkv, out, lse, heads: c.H, rows })]);
    await time('naive', [await attention(gpu, { qkv, out, lse, heads: c.H, kernel: 'naive' })]);
    let method = '';
    for (const rows of rowChoices) method = await time(`backward rows=${rows}`, await attentionBackward(gpu, { qkv, out, lse, dout, delta, dqkv, heads: c.H, rows }));
    log(`  ${c.name} (default rows=${defaultAttentionRows(c.hd, gpu.isSoftware)}; ms, ${method})`);
    log(`    ${cells.join('   ')}`);
    for (const t of [qkv, out, lse, dout, delta, dqkv]) t.buffer.destroy();
  }
}

export async function runKernelBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  await runMatmulBench(gpu, log);
  await runAttentionBench(gpu, log);
}
