// Softmax cross-entropy with label smoothing or soft targets (shaders/cross_entropy.wgsl).
//   logits, dlogits [N, C]   labels [N] (class indices as f32)   soft [N, C]   loss [N]
import type { Gpu } from '../gpu/device';
import { createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { placeholder, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkShape, checkTensor, fail, shapeStr } from './check';
import { shaders } from './shaders';

export interface CrossEntropyArgs {
  logits: Tensor;
  /** Hard labels (with `smoothing`), or soft target rows: exactly one of the two. */
  labels?: Tensor;
  soft?: Tensor;
  smoothing?: number;
  loss: Tensor;
  dlogits: Tensor;
  /** Multiplies dlogits; 1/N (the default) differentiates the batch mean. */
  gradScale?: number;
  label?: string;
}

export async function crossEntropy(gpu: Gpu, args: CrossEntropyArgs): Promise<Dispatch> {
  const name = args.label ?? 'cross entropy';
  checkTensor(gpu, name, 'logits', args.logits);
  if (args.logits.shape.length !== 2) fail(name, `logits has shape ${shapeStr(args.logits.shape)}, expected [N, C]`);
  const [N, C] = args.logits.shape as [number, number];
  if (!!args.labels === !!args.soft) fail(name, 'give exactly one of labels (hard targets) and soft (target distributions)');
  if (args.labels) checkShape(name, 'labels', args.labels, [N]);
  if (args.soft) checkShape(name, 'soft', args.soft, [N, C]);
  const smoothing = args.smoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) fail(name, `smoothing must be in [0, 1), got ${smoothing}`);
  if (args.soft && smoothing !== 0) fail(name, 'smoothing applies to hard labels; smooth soft targets when building them');
  checkShape(name, 'loss', args.loss, [N]);
  checkShape(name, 'dlogits', args.dlogits, [N, C]);
  checkDistinct(name, { loss: args.loss, dlogits: args.dlogits }, { logits: args.logits, labels: args.labels, soft: args.soft });
  return createDispatch(gpu, {
    family: shaders.crossEntropy, entry: 'cross_entropy', label: name,
    overrides: { SOFT_TARGETS: !!args.soft },
    params: { N, C, smoothing, grad_scale: args.gradScale ?? 1 / N },
    tensors: {
      logits: args.logits, labels: args.labels ?? placeholder(gpu), soft: args.soft ?? placeholder(gpu),
      loss: args.loss, dlogits: args.dlogits,
    },
    workgroups: grid1d(gpu, N),
  });
}
