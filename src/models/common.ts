// What every family's config shares (graph/family.ts ModelConfig), checked in one place, and the
// preprocessing constants of ImageNet checkpoints.
import type { ModelConfig } from '../graph/family';

export const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], cropPct: 0.875, numClasses: 1000 };

/** A LayerNorm's parameter by timm's names (`norm1.weight`, `patch_embed.norm.bias`, `fc_norm.weight`). */
export function isNormParam(name: string): boolean {
  return /norm\d?\.(weight|bias)$/.test(name);
}

/** Fields that must be positive integers, named in the error. */
export function checkPositiveInts<C extends object>(c: C, keys: (keyof C)[]): void {
  for (const k of keys) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`config: ${String(k)} must be a positive integer, got ${JSON.stringify(v)}`);
  }
}

/** Checks the fields every family has; throws naming the first that makes no sense. */
/** `headless`: the family allows numClasses 0, a backbone without a classifier (features only). */
export function validateModelConfig(c: ModelConfig, options: { headless?: boolean } = {}): void {
  checkPositiveInts(c, ['imageSize', 'inChannels']);
  if (!(options.headless && c.numClasses === 0)) checkPositiveInts(c, ['numClasses']);
  if (c.mean.length !== c.inChannels || c.std.length !== c.inChannels) {
    throw new Error(`config: mean and std need ${c.inChannels} values (one per input channel)`);
  }
  if (c.std.some((s) => !(s > 0))) throw new Error('config: std values must be positive');
  if (!(c.cropPct > 0 && c.cropPct <= 1)) throw new Error(`config: cropPct must be in (0, 1], got ${c.cropPct}`);
  if (c.labels && c.labels.length !== c.numClasses) throw new Error(`config: ${c.labels.length} labels for ${c.numClasses} classes`);
}
