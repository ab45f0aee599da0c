// Kernel benchmark: matmul GFLOP/s and fused attention time, each beside the simplest correct
// version of the same kernel, on whatever adapter runs it. Prints through `log`; DOM-free.
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/dispatch';
import { createTensor, numel } from '../gpu/tensor';
import { benchmark } from '../gpu/timer';
import { attention } from '../kernels/attention';
import { matmul, type MatmulKernel } from '../kernels/matmul';

interface MatmulCase { name: string; M: number; N: number; K: number; transB: boolean }

const MATMUL_CASES: MatmulCase[] = [
  { name: '1024^3', M: 1024, N: 1024, K: 1024, transB: false },
  { name: 'ViT-Ti qkv 8x197 x 192 -> 576', M: 8 * 197, N: 576, K: 192, transB: true },
  { name: 'ViT-B fc1 8x197 x 768 -> 3072', M: 8 * 197, N: 3072, K: 768, transB: true },
  { name: 'ViT-B fc2 8x197 x 3072 -> 768', M: 8 * 197, N: 768, K: 3072, transB: true },
];

const ATTENTION_CASES = [
  { name: 'T=197, 3 heads of 64 (ViT-Ti), batch 8', B: 8, T: 197, H: 3 },
  { name: 'T=197, 12 heads of 64 (ViT-B), batch 8', B: 8, T: 197, H: 12 },
];

function filled(gpu: Gpu, shape: number[], label: string) {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.5;
  return createTensor(gpu, shape, label, data);
}

export async function runKernelBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  log(`adapter: ${gpu.name}; matmul kernel chosen for it: ${gpu.matmulVariant}`);
  const kernels: MatmulKernel[] = gpu.matmulVariant === 'registers' ? ['registers', 'tiled', 'naive'] : ['tiled', 'registers', 'naive'];
  log('matmul GFLOP/s (2*M*N*K / time)');
  for (const c of MATMUL_CASES) {
    const a = filled(gpu, [c.M, c.K], 'a');
    const b = filled(gpu, c.transB ? [c.N, c.K] : [c.K, c.N], 'b');
    const out = createTensor(gpu, [c.M, c.N], 'c');
    const cells: string[] = [];
    for (const kernel of kernels) {
      const d = await matmul(gpu, { a, b, c: out, transB: c.transB, kernel });
      const t = await benchmark(gpu, [d]);
      cells.push(`${kernel} ${((2 * c.M * c.N * c.K) / (t.ms * 1e6)).toFixed(2)} (${t.ms.toFixed(1)} ms, ${t.method})`);
      d.destroy();
    }
    log(`  ${c.name.padEnd(32)} ${cells.join('   ')}`);
    for (const t of [a, b, out]) t.buffer.destroy();
  }
  log('attention ms per call (softmax(QK^T/8)V over all heads)');
  for (const c of ATTENTION_CASES) {
    const D = c.H * 64;
    const qkv = filled(gpu, [c.B, c.T, 3 * D], 'qkv');
    const out = createTensor(gpu, [c.B, c.T, D], 'out');
    const lse = createTensor(gpu, [c.B, c.H, c.T], 'lse');
    const cells: string[] = [];
    for (const kernel of ['fused', 'naive'] as const) {
      const d: Dispatch = await attention(gpu, { qkv, out, lse, heads: c.H, kernel });
      const t = await benchmark(gpu, [d]);
      cells.push(`${kernel} ${t.ms.toFixed(2)} ms (${t.method})`);
      d.destroy();
    }
    log(`  ${c.name.padEnd(40)} ${cells.join('   ')}`);
    for (const t of [qkv, out, lse]) t.buffer.destroy();
  }
}
