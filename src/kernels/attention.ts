// Fused multi-head self-attention on timm's packed qkv (shaders/attention.wgsl).
//   qkv  [B, T, 3*D]   (B, T, 3, H, hd) with D = H * hd
//   out  [B, T, D]     lse [B, H, T]     probs [B, H, T, T] (only when asked for)
//   bias [nb, nh, T, T] additive, broadcast by b % nb and h % nh (relative position bias, masks)
//   dscores [B, H, T, T] gradient of the scores after the scale, i.e. of the bias (only when asked for)
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, type Dispatch } from '../gpu/dispatch';
import { placeholder, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkShape, checkTensor, fail, shapeStr } from './check';
import { shaders } from './shaders';

export const MAX_HEAD_DIM = 128;
const WORKGROUP = 32;
/** The shader's private storage per invocation: at most MAX_ROWS rows and MAX_ROW_VECS vec4s of rows. */
const MAX_ROWS = 8;
const MAX_ROW_VECS = 128;

/** The most rows per invocation the shader holds for this head dimension. */
export function maxAttentionRows(headDim: number): number {
  return Math.max(1, Math.min(MAX_ROWS, Math.floor((4 * MAX_ROW_VECS) / headDim)));
}

/**
 * Rows per invocation. On CPU adapters loads from storage dominate, so each invocation takes as
 * many rows as the shader holds (8 up to head dim 64): each streamed key (or query) is loaded once
 * for all of them. `npm run bench -- --suite attention` compares the choices. GPUs get 1: more rows
 * would spill registers and leave fewer invocations to hide memory latency.
 */
export function defaultAttentionRows(headDim: number, isSoftware: boolean): number {
  return isSoftware ? maxAttentionRows(headDim) : 1;
}

export interface AttentionShapeArgs {
  qkv: Tensor;
  heads: number;
  /** Defaults to head_dim^-0.5. */
  scale?: number;
  bias?: Tensor;
  /** Rows of one side per invocation, 1 to maxAttentionRows(head_dim); defaults to defaultAttentionRows. */
  rows?: number;
}

export interface AttentionArgs extends AttentionShapeArgs {
  out: Tensor;
  lse: Tensor;
  /** When given, softmax probabilities are written here for visualisation. */
  probs?: Tensor;
  /** 'naive' is the three-pass reference kernel for benchmarks. */
  kernel?: 'fused' | 'naive';
  label?: string;
}

export interface AttentionBackwardArgs extends AttentionShapeArgs {
  out: Tensor;
  dout: Tensor;
  lse: Tensor;
  /** Scratch [B, H, T]: dO . O per row, written by the first pass. */
  delta: Tensor;
  dqkv: Tensor;
  /**
   * When given, [B, H, T, T] receives d(score_ij) = d(bias)[b, h, i, j] for every batch and head,
   * unreduced; an additive bias broadcast over batches or heads takes its sum over them
   * (reduce.ts sumRows, swin.ts relativePositionBiasBackward).
   */
  dscores?: Tensor;
  label?: string;
}

function attentionParams(gpu: Gpu, name: string, args: AttentionShapeArgs) {
  const { qkv, heads } = args;
  checkTensor(gpu, name, 'qkv', qkv);
  if (qkv.shape.length !== 3 || qkv.shape[2]! % 3 !== 0) fail(name, `qkv has shape ${shapeStr(qkv.shape)}, expected [B, T, 3*D]`);
  const [B, T, D3] = qkv.shape as [number, number, number];
  const D = D3 / 3;
  if (!Number.isInteger(heads) || heads <= 0 || D % heads !== 0) fail(name, `heads=${heads} does not divide the model dimension ${D}`);
  const hd = D / heads;
  if (hd % 4 !== 0 || hd > MAX_HEAD_DIM) fail(name, `head dimension ${hd} must be a multiple of 4 and at most ${MAX_HEAD_DIM}`);
  let nb = 1;
  let nh = 1;
  if (args.bias) {
    checkTensor(gpu, name, 'bias', args.bias);
    const bs = args.bias.shape;
    if (bs.length !== 4 || bs[2] !== T || bs[3] !== T || B % bs[0]! !== 0 || heads % bs[1]! !== 0) {
      fail(name, `bias has shape ${shapeStr(bs)}, expected [nb, nh, ${T}, ${T}] with nb dividing ${B} and nh dividing ${heads}`);
    }
    [nb, nh] = bs as [number, number];
  }
  const rows = args.rows ?? defaultAttentionRows(hd, gpu.isSoftware);
  if (!Number.isInteger(rows) || rows < 1 || rows > maxAttentionRows(hd)) {
    fail(name, `rows=${rows} per invocation must be an integer from 1 to ${maxAttentionRows(hd)} for head dimension ${hd}`);
  }
  const params = { T, H: heads, scale: args.scale ?? 1 / Math.sqrt(hd), bias_nb: nb, bias_nh: nh, batch_heads: B * heads };
  return { B, T, D, H: heads, params, overrides: { HAS_BIAS: !!args.bias, HD4: hd / 4, ROWS: rows }, workgroups: [ceilDiv(ceilDiv(T, rows), WORKGROUP), B * heads, 1] as const };
}

export async function attention(gpu: Gpu, args: AttentionArgs): Promise<Dispatch> {
  const name = args.label ?? 'attention';
  // The naive kernel takes one row per invocation.
  const { B, T, D, H, params, overrides, workgroups } = attentionParams(gpu, name, args.kernel === 'naive' ? { ...args, rows: 1 } : args);
  checkShape(name, 'out', args.out, [B, T, D]);
  checkShape(name, 'lse', args.lse, [B, H, T]);
  if (args.probs) {
    checkTensor(gpu, name, 'probs', args.probs);
    checkShape(name, 'probs', args.probs, [B, H, T, T]);
  }
  checkDistinct(name, { out: args.out, lse: args.lse, ...(args.probs && { probs: args.probs }) }, { qkv: args.qkv, bias: args.bias });
  return createDispatch(gpu, {
    family: shaders.attention,
    entry: `attention_${args.kernel ?? 'fused'}`,
    label: name,
    overrides: { ...overrides, WRITE_PROBS: !!args.probs },
    params,
    tensors: { qkv: args.qkv, bias: args.bias ?? placeholder(gpu), out: args.out, lse: args.lse, probs: args.probs ?? placeholder(gpu, 'write') },
    workgroups,
  });
}

/** Two dispatches: dQ (and delta, and dscores when asked for), then dK and dV. */
export async function attentionBackward(gpu: Gpu, args: AttentionBackwardArgs): Promise<Dispatch[]> {
  const name = args.label ?? 'attention backward';
  const { B, T, D, H, params, overrides, workgroups } = attentionParams(gpu, name, args);
  checkShape(name, 'out', args.out, [B, T, D]);
  checkShape(name, 'dout', args.dout, [B, T, D]);
  checkShape(name, 'lse', args.lse, [B, H, T]);
  checkShape(name, 'delta', args.delta, [B, H, T]);
  checkShape(name, 'dqkv', args.dqkv, [B, T, 3 * D]);
  if (args.dscores) {
    checkTensor(gpu, name, 'dscores', args.dscores);
    checkShape(name, 'dscores', args.dscores, [B, H, T, T]);
  }
  checkDistinct(name, { dqkv: args.dqkv, delta: args.delta, ...(args.dscores && { dscores: args.dscores }) }, { qkv: args.qkv, out: args.out, dout: args.dout, lse: args.lse, bias: args.bias });
  const bias = args.bias ?? placeholder(gpu);
  const common = { family: shaders.attention, overrides, params, workgroups };
  return Promise.all([
    createDispatch(gpu, {
      ...common, entry: 'attention_backward_dq', label: `${name} dq`, overrides: args.dscores ? { ...overrides, WRITE_DSCORES: true } : overrides,
      tensors: { qkv: args.qkv, bias, out: args.out, lse: args.lse, dout: args.dout, delta: args.delta, dqkv: args.dqkv, dscores: args.dscores ?? placeholder(gpu, 'write') },
    }),
    createDispatch(gpu, {
      ...common, entry: 'attention_backward_dkv', label: `${name} dkv`,
      tensors: { qkv: args.qkv, bias, lse: args.lse, dout: args.dout, delta: args.delta, dqkv: args.dqkv },
    }),
  ]);
}
