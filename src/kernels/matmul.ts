// Batched matmul with transposes, bias and GELU epilogues (shaders/matmul.wgsl).
//   a: [...batch, M, K] ([...batch, K, M] with transA)    batch dims may be omitted: broadcast
//   b: [...batch, K, N] ([...batch, N, K] with transB)    e.g. an nn.Linear weight [out, in]
//   c: [...batch, M, N]                                    bias: [N]
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, type Dispatch } from '../gpu/dispatch';
import { numel, placeholder, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkShape, checkTensor, fail, shapeStr } from './check';
import { shaders } from './shaders';

/**
 * 'registers': a 4x4 block of C per thread; 'registers8': 8x8 (operands' stored rows must be
 * multiples of 4 long). Left to the adapter, register kernels take 8x8 blocks where they can and
 * the grid has at least MIN_WORKGROUPS_8X8 workgroups.
 */
export type MatmulKernel = 'naive' | 'registers' | 'registers8' | 'tiled';
export type Epilogue = 'none' | 'bias' | 'bias_gelu';

export interface MatmulArgs {
  a: Tensor;
  b: Tensor;
  c: Tensor;
  bias?: Tensor;
  transA?: boolean;
  transB?: boolean;
  epilogue?: Epilogue;
  /** c += result instead of c = result (gradient accumulation). */
  accumulate?: boolean;
  /** Defaults to the adapter's choice (`gpu.matmulVariant`). */
  kernel?: MatmulKernel;
  label?: string;
}

const EPILOGUES: Record<Epilogue, number> = { none: 0, bias: 1, bias_gelu: 2 };
/**
 * Workgroups of 64x64 C (8x8 threads of 8x8) below which 'registers' keeps 4x4 blocks. A CPU
 * adapter runs each workgroup on one core: on 2 cores 8x8 blocks ran 1.5x faster than 4x4 even
 * with two workgroups (the 128x64 dW of the small ViT's fc1), but one alone leaves a core idle.
 */
const MIN_WORKGROUPS_8X8 = 2;
/** C elements per workgroup side, by kernel: 8x8 threads of 1x1, 4x4, 8x8; 16x16 threads of 4x4. */
const SPAN: Record<MatmulKernel, number> = { naive: 8, registers: 32, registers8: 64, tiled: 64 };

export async function matmul(gpu: Gpu, args: MatmulArgs): Promise<Dispatch> {
  const name = args.label ?? 'matmul';
  const { a, b, c } = args;
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const epilogue = args.epilogue ?? 'none';
  for (const [n, t] of [['a', a], ['b', b], ['c', c]] as const) {
    checkTensor(gpu, name, n, t);
    if (t.shape.length < 2) fail(name, `${n} has shape ${shapeStr(t.shape)}: needs at least 2 dimensions`);
  }
  const [M, N] = c.shape.slice(-2) as [number, number];
  const batch = numel(c.shape.slice(0, -2));
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const [aM, K] = transA ? [a1, a0] : [a0, a1];
  const [bK, bN] = transB ? [b1, b0] : [b0, b1];
  if (aM !== M) fail(name, `a ${shapeStr(a.shape)}${transA ? ' (transposed)' : ''} has ${aM} rows but c ${shapeStr(c.shape)} has ${M}`);
  if (bN !== N) fail(name, `b ${shapeStr(b.shape)}${transB ? ' (transposed)' : ''} has ${bN} columns but c ${shapeStr(c.shape)} has ${N}`);
  if (bK !== K) fail(name, `inner dimensions differ: a ${shapeStr(a.shape)} gives K=${K}, b ${shapeStr(b.shape)} gives K=${bK}`);
  const strideOf = (t: Tensor, n: string): number => {
    const tb = numel(t.shape.slice(0, -2));
    if (tb === batch) return batch === 1 ? 0 : numel(t.shape.slice(-2));
    if (tb === 1) return 0;
    return fail(name, `${n} ${shapeStr(t.shape)} has batch ${tb}, c ${shapeStr(c.shape)} has batch ${batch}`);
  };
  const strideA = strideOf(a, 'a');
  const strideB = strideOf(b, 'b');
  if (epilogue !== 'none') {
    if (!args.bias) fail(name, `epilogue ${epilogue} needs a bias`);
    checkTensor(gpu, name, 'bias', args.bias);
    checkShape(name, 'bias', args.bias, [N]);
  }
  checkDistinct(name, { c }, { a, b, bias: args.bias });
  if (batch > gpu.device.limits.maxComputeWorkgroupsPerDimension) {
    fail(name, `batch ${batch} exceeds maxComputeWorkgroupsPerDimension (${gpu.device.limits.maxComputeWorkgroupsPerDimension})`);
  }

  // 16-byte loads need each operand's stored rows (and batch strides) to be whole vec4s.
  const vec4 = (transA ? M : K) % 4 === 0 && (transB ? K : N) % 4 === 0;
  let kernel = args.kernel ?? gpu.matmulVariant;
  const span8 = SPAN.registers8;
  if (args.kernel === undefined && kernel === 'registers' && vec4 && ceilDiv(M, span8) * ceilDiv(N, span8) * batch >= MIN_WORKGROUPS_8X8) kernel = 'registers8';
  if (kernel === 'registers8' && !vec4) {
    fail(name, `kernel registers8 needs the stored rows of a and b to be multiples of 4 long (M=${M}, N=${N}, K=${K}${transA ? ', a transposed' : ''}${transB ? ', b transposed' : ''})`);
  }
  const entry = kernel === 'registers8' ? 'matmul_registers_vec4_8x8' : kernel === 'registers' && vec4 ? 'matmul_registers_vec4' : `matmul_${kernel}`;
  const operands: Record<string, Tensor> = entry.startsWith('matmul_registers_vec4') ? { a4: a, b4: b } : { a, b };
  const span = SPAN[kernel];
  return createDispatch(gpu, {
    family: shaders.matmul,
    entry,
    label: name,
    overrides: { TRANS_A: transA, TRANS_B: transB, EPILOGUE: EPILOGUES[epilogue], ACCUMULATE: args.accumulate ?? false },
    params: { M, N, K, stride_a: strideA, stride_b: strideB, stride_c: M * N },
    tensors: { ...operands, c, bias: args.bias ?? placeholder(gpu) },
    workgroups: [ceilDiv(N, span), ceilDiv(M, span), batch],
  });
}
