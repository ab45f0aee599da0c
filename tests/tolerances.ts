// Every tolerance in the test suite, with the reason for its size. A kernel passes when each
// element satisfies |gpu - ref| <= atol + rtol * |ref| against a float64 reference.
//
// f32 has a unit roundoff of 6e-8. A dot product of length K accumulated in f32 has a worst-case
// relative error near K * 6e-8 but a typical one near sqrt(K) * 6e-8 (errors are random signs):
// about 3e-6 for K = 3072. Where terms cancel, relative error is unbounded, so each tolerance has
// an absolute part scaled to the magnitude of the terms: our inputs are O(1), so outputs whose
// terms are O(1) but sum to near zero get an absolute floor of sqrt(K) * 6e-8 * typical term size.
// Tests therefore draw inputs at the scales a network has (weights with std 1/sqrt(fan_in)).

export interface Tolerance { atol: number; rtol: number }

export const TOL = {
  /**
   * Dot products of up to K = 3072 terms, B drawn like an initialised weight (std 1/sqrt(K)) so the
   * sums are O(1) as in a layer: rounding adds about sqrt(K) * 6e-8 * 1/sqrt(K), near 1e-7. The
   * bounds leave room for any summation order and for the transposed operands of the backward pass.
   */
  matmul: { atol: 2e-5, rtol: 1e-4 },
  /** Our erfc approximation is good to 1.2e-7 relative; exp() in WGSL may lose a few ulps more. */
  gelu: { atol: 1e-6, rtol: 2e-6 },
  /** Mean and variance over up to 768 values in f32, then one normalisation. */
  layernorm: { atol: 1e-5, rtol: 1e-4 },
  /** Softmax-weighted averages of O(1) values over up to 197 keys; online rescaling adds a few ulps. */
  attention: { atol: 2e-5, rtol: 1e-4 },
  /** Probabilities in [0, 1]: absolute error is what matters for visualisation. */
  attentionProbs: { atol: 1e-6, rtol: 1e-4 },
  /** log-sum-exp over up to 1000 classes, then a difference of probabilities. */
  crossEntropy: { atol: 1e-6, rtol: 1e-4 },
  /** One AdamW step: a handful of f32 operations per element; sqrt and division add ulps. */
  adamw: { atol: 1e-7, rtol: 1e-5 },
  /** A sum of squares over up to millions of elements in tree order: relative error ~log2(n) ulps. */
  gradNorm: { atol: 0, rtol: 1e-5 },
  /** Copies and single additions are exact or within one rounding. */
  elementwise: { atol: 1e-7, rtol: 1e-6 },
  /** Column sums over up to a few thousand rows: sequential f32 summation. */
  reduce: { atol: 1e-5, rtol: 1e-4 },
  /**
   * Swin's relative position bias table gradient: per entry a sum over the bias planes (sumRows,
   * sequential f32) and then over the up to N = 49 window pairs at that offset; up to a few
   * thousand O(1) terms (random dbias) or O(1/N) ones (dscores of a softmax), as `reduce`.
   */
  relativeBiasGrad: { atol: 1e-5, rtol: 1e-4 },
  /** A whole forward pass against the float64 reference model: 12 blocks of the kernels above. */
  model: { atol: 1e-4, rtol: 1e-4 },
  /** Whole-model checks against the float64 golden file: the project's acceptance bars, not ours to loosen. */
  goldenAttention: { atol: 1e-5, rtol: 0 },
} satisfies Record<string, Tolerance>;


/**
 * Whole-model logits and features, relative L2: DeiT-tiny against the golden file, and random
 * models of every supported shape against the float64 reference. The acceptance bar is 1e-4; we
 * hold 1e-5, about 10x the worst measured (8e-7 DeiT-tiny, 1.1e-6 ViT-B/16), so a regression
 * fails long before the bar.
 */
export const GOLDEN_REL_L2 = 1e-5;

/**
 * DeiT-tiny's weights are stored F16 in the repository (timm's F32 rounded once, half the
 * download); its golden outputs are timm's from the F32 weights. The rounding, not our arithmetic,
 * sets these errors: measured with the float64 reference model (tests/referenceModel.node.test.ts)
 * on the two golden photos, logits 7.6e-4 and features 6.6e-4 relative L2, attention probabilities
 * 2.6e-3 max abs; the GPU's f32 adds about 1e-6 to that. The bounds are twice those. Top-5 and
 * argmax are still checked to be identical. The tight bars above stay on the F32 micro fixtures (DeiT-III, registers, Swin).
 */
export const F16_WEIGHTS_TOL = { logitsRelL2: 1.5e-3, featuresRelL2: 1.5e-3, attentionAbs: 5e-3 };

/**
 * Whole-model gradients against the float64 reference, relative L2 per parameter tensor. The
 * acceptance bar is 1e-3; we hold 1e-5, about 15x the worst measured (6.5e-7): errors compound
 * through the blocks' backward, each kernel adding ~1e-7.
 */
export const GRAD_REL_L2 = 1e-5;

/**
 * One computation planned two ways on the same GPU (head-only steps on cached features against the
 * whole forward pass, a resumed run against an uninterrupted one), relative: only f32 rounding may
 * differ, e.g. a fused GELU epilogue in the inference pass against a separate GELU in training.
 */
export const SAME_COMPUTATION_REL = 1e-5;
