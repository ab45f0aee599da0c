// The dense head's kernels (shaders/segmentation.wgsl): bilinear upsampling of a token grid to the
// image size (PyTorch's F.interpolate(mode='bilinear', align_corners=False)) and its backward, and
// the per-pixel loss with its gradient: sigmoid binary cross-entropy, or softmax cross-entropy
// over K classes.
//   x [B, prefix + h*w, C] (tokens: `prefix` class/register tokens, then the grid row-major)
//   out [B, Ho*Wo, C] (pixels row-major, channels last)
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkShape, checkTensor, fail, shapeStr } from './check';
import { shaders } from './shaders';

export interface UpsampleShape {
  /** The token grid (rows, columns). */
  grid: readonly [number, number];
  /** The output size (height, width). */
  size: readonly [number, number];
  /** Tokens before the grid in each image's rows of x (skipped; their gradient is 0). Default 0. */
  prefix?: number;
}

function upsampleParams(name: string, x: Tensor, s: UpsampleShape): { B: number; C: number; params: Record<string, number> } {
  if (x.shape.length !== 3) fail(name, `x has shape ${shapeStr(x.shape)}, expected [B, tokens, C]`);
  const [B, T, C] = x.shape as [number, number, number];
  const [h, w] = s.grid;
  const [Ho, Wo] = s.size;
  const prefix = s.prefix ?? 0;
  for (const [what, v] of [['grid rows', h], ['grid columns', w], ['output height', Ho], ['output width', Wo]] as const) {
    if (!Number.isInteger(v) || v <= 0) fail(name, `${what} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(prefix) || prefix < 0) fail(name, `prefix must be a non-negative integer, got ${prefix}`);
  if (T !== prefix + h * w) fail(name, `x has ${T} tokens per image; ${prefix} prefix tokens and a ${h}x${w} grid make ${prefix + h * w}`);
  return { B, C, params: { C, h, w, Ho, Wo, prefix, scale_y: h / Ho, scale_x: w / Wo, grad_scale: 0 } };
}

/** out [B, Ho*Wo, C] = bilinear upsampling of x's grid (align_corners=False). */
export async function upsampleBilinear(gpu: Gpu, args: UpsampleShape & { x: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'upsample bilinear';
  checkTensor(gpu, name, 'x', args.x);
  const { B, C, params } = upsampleParams(name, args.x, args);
  checkShape(name, 'out', args.out, [B, args.size[0] * args.size[1], C]);
  checkDistinct(name, { out: args.out }, { x: args.x });
  const n = numel(args.out.shape);
  return createDispatch(gpu, {
    family: shaders.segmentation, entry: 'upsample_bilinear', label: name, params: { ...params, n },
    tensors: { x: args.x, out: args.out }, workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}

/** dx [B, prefix + h*w, C] (written, prefix rows 0) from dout [B, Ho*Wo, C]. */
export async function upsampleBilinearBackward(gpu: Gpu, args: UpsampleShape & { dout: Tensor; dx: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'upsample bilinear backward';
  checkTensor(gpu, name, 'dx', args.dx);
  checkTensor(gpu, name, 'dout', args.dout);
  const { B, C, params } = upsampleParams(name, args.dx, args);
  checkShape(name, 'dout', args.dout, [B, args.size[0] * args.size[1], C]);
  checkDistinct(name, { dx: args.dx }, { dout: args.dout });
  const n = numel(args.dx.shape);
  return createDispatch(gpu, {
    family: shaders.segmentation, entry: 'upsample_bilinear_backward', label: name, params: { ...params, n },
    tensors: { dout: args.dout, out: args.dx }, workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}

export interface PixelLossArgs {
  /** [N, 1] logits of the foreground (binary), or [N, K] class logits. */
  logits: Tensor;
  /** [N]: the foreground's probability in [0, 1] (binary), or the class index as f32. */
  targets: Tensor;
  /** [N] per-pixel loss (NaN where a target is out of range). */
  loss: Tensor;
  /** Like logits: d(loss * gradScale summed)/d(logits). */
  dlogits: Tensor;
  /** Multiplies dlogits; 1/N (the default) differentiates the mean over pixels. */
  gradScale?: number;
  label?: string;
}

/** Sigmoid binary cross-entropy (one logit) or softmax cross-entropy (K >= 2) per pixel. */
export async function pixelLoss(gpu: Gpu, args: PixelLossArgs): Promise<Dispatch> {
  const name = args.label ?? 'pixel loss';
  checkTensor(gpu, name, 'logits', args.logits);
  if (args.logits.shape.length !== 2) fail(name, `logits has shape ${shapeStr(args.logits.shape)}, expected [N, K]`);
  const [N, K] = args.logits.shape as [number, number];
  checkShape(name, 'targets', args.targets, [N]);
  checkShape(name, 'loss', args.loss, [N]);
  checkShape(name, 'dlogits', args.dlogits, [N, K]);
  checkDistinct(name, { loss: args.loss, dlogits: args.dlogits }, { logits: args.logits, targets: args.targets });
  return createDispatch(gpu, {
    family: shaders.segmentation, entry: K === 1 ? 'sigmoid_bce' : 'softmax_ce', label: name,
    params: { n: N, C: K, h: 0, w: 0, Ho: 0, Wo: 0, prefix: 0, scale_y: 0, scale_x: 0, grad_scale: args.gradScale ?? 1 / N },
    tensors: { x: args.logits, targets: args.targets, loss: args.loss, out: args.dlogits }, workgroups: grid1d(gpu, ceilDiv(N, 256)),
  });
}
