// Batched matmul with transposes, bias and GELU epilogues (shaders/matmul.wgsl).
//   a: [...batch, M, K] ([...batch, K, M] with transA)    batch dims may be omitted: broadcast
//   b: [...batch, K, N] ([...batch, N, K] with transB)    e.g. an nn.Linear weight [out, in]
//   c: [...batch, M, N]                                    bias: [N]
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, type Dispatch } from '../gpu/dispatch';
import { numel, placeholder, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkShape, checkTensor, fail, shapeStr } from './check';
import { shaders } from './shaders';

export type MatmulKernel = 'naive' | 'registers' | 'tiled';
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

  const kernel = args.kernel ?? gpu.matmulVariant;
  // 16-byte loads need each operand's stored rows (and batch strides) to be whole vec4s.
  const vec4 = (transA ? M : K) % 4 === 0 && (transB ? K : N) % 4 === 0;
  const entry = kernel === 'registers' && vec4 ? 'matmul_registers_vec4' : `matmul_${kernel}`;
  const operands: Record<string, Tensor> = entry === 'matmul_registers_vec4' ? { a4: a, b4: b } : { a, b };
  // Workgroups cover 8x8 elements (naive), 32x32 (registers: 8x8 threads of 4x4) or 64x64 (tiled).
  const span = kernel === 'naive' ? 8 : kernel === 'registers' ? 32 : 64;
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
