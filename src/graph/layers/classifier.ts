// The classifier: one linear head per feature vector, logits [B, K] = features [B, F] W^T + b,
// averaged when there are several (DeiT-distilled's `head` on the class token and `head_dist` on
// the distillation token). Training gives each head its own cross-entropy against the same
// targets; the loss is their mean over the heads and over every example of an optimizer step, so
// with M micro-batches accumulated into one step each head's logits get 1 / (heads * B * M) of the
// gradient: M micro-batches of B give the gradient of one batch of M * B.
import type { Tensor } from '../../gpu/tensor';
import { crossEntropy } from '../../kernels/crossEntropy';
import { add } from '../../kernels/tokens';
import type { PlanBuilder } from '../plan';
import { linearBackward, linearForward } from './linear';

export interface ClassifierActivations {
  /** [B, F] what each head reads. */
  features: readonly Tensor[];
  /** [B, K] each head's logits (the same tensor as `logits` for one head). */
  headLogits: readonly Tensor[];
  /** [B, K] their mean. */
  logits: Tensor;
}

/** Class targets: indices [B] with label smoothing, or rows of class probabilities [B, K] (mixup, CutMix). */
export type Targets = { labels: Tensor; smoothing: number } | { soft: Tensor };

/** `heads` are the heads' parameter names (`head`, `head.fc`), one per features tensor. */
export function classifierForward(b: PlanBuilder, heads: readonly string[], features: readonly Tensor[], numClasses: number): ClassifierActivations {
  if (heads.length !== features.length || heads.length === 0) throw new Error(`classifier: ${heads.length} heads for ${features.length} feature tensors`);
  if (heads.length > 2) throw new Error(`classifier: at most two heads are averaged, got ${heads.length}`);
  const [B, F] = features[0]!.shape as [number, number];
  const logits = b.tensor([B, numClasses], 'logits');
  const headLogits = heads.length === 1 ? [logits] : heads.map((h) => b.tensor([B, numClasses], `${h} logits`));
  heads.forEach((h, i) => linearForward(b, h, features[i]!, headLogits[i]!, { in: F, out: numClasses }));
  if (heads.length === 2) b.add(add(b.gpu, { a: headLogits[0]!, b: headLogits[1]!, out: logits, alpha: 0.5, label: 'average heads' }));
  return { features, headLogits, logits };
}

/**
 * Each head's per-example loss into `losses` [B] and d(logits), then the heads' gradients where
 * they train and d(features) into `dfeatures` where gradients flow on into the body.
 */
export function classifierBackward(b: PlanBuilder, heads: readonly string[], a: ClassifierActivations, g: { targets: Targets; losses: readonly Tensor[]; dfeatures?: readonly Tensor[]; microBatches?: number }): void {
  const [B, K] = a.logits.shape as [number, number];
  const F = a.features[0]!.shape[1]!;
  const M = g.microBatches ?? 1;
  if (!Number.isInteger(M) || M < 1) throw new Error(`classifier: microBatches must be a positive integer, got ${M}`);
  const gradScale = 1 / (heads.length * B * M);
  heads.forEach((h, i) => {
    const dlogits = b.tensor([B, K], `d ${h} logits`);
    b.add(crossEntropy(b.gpu, { logits: a.headLogits[i]!, ...g.targets, loss: g.losses[i]!, dlogits, gradScale, label: `${h} loss` }));
    linearBackward(b, h, { x: a.features[i]!, dy: dlogits, dx: g.dfeatures?.[i] }, { in: F, out: K });
  });
}
