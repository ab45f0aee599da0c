// The configuration of a ViT or DeiT: architecture and the preprocessing it was trained with.
// Presets are data; checkpoint configs (timm pretrained_cfg, Hugging Face config.json) are parsed
// into this shape by src/weights/config.ts.
import type { ModelConfig } from '../../graph/family';
import { checkPositiveInts, IMAGENET, validateModelConfig } from '../common';

export interface ViTConfig extends ModelConfig {
  family?: 'vit';
  /** Training resolution (square); inference may use another size with interpolated pos-embed. */
  imageSize: number;
  patchSize: number;
  dim: number;
  depth: number;
  heads: number;
  mlpDim: number;
  qkvBias: boolean;
  /** LayerNorm epsilon: timm 1e-6, Hugging Face ViT 1e-12, Swin 1e-5. */
  eps: number;
  /** Prefix tokens: 'cls' (ViT, DeiT) or 'cls+dist' (DeiT distilled, two heads averaged). */
  tokens: 'cls' | 'cls+dist' | 'none';
  /** 'token': the cls token's features; 'avg': mean of the patch tokens (then fc_norm). */
  globalPool: 'token' | 'avg';
  /** Pre-norm (timm, x + f(norm(x))) or post-norm (norm(x + f(x)), the original Transformer). */
  norm: 'pre' | 'post';
}

const base = (dim: number, depth: number, heads: number, patchSize = 16): ViTConfig => ({
  imageSize: 224, patchSize, inChannels: 3, dim, depth, heads, mlpDim: 4 * dim, qkvBias: true, eps: 1e-6,
  tokens: 'cls', globalPool: 'token', norm: 'pre', ...IMAGENET,
});

export const PRESETS = {
  'vit-tiny': base(192, 12, 3),
  'vit-small': base(384, 12, 6),
  'vit-base': base(768, 12, 12),
  'vit-large': base(1024, 24, 16),
  'vit-huge': { ...base(1280, 32, 16, 14) },
  'deit-tiny': base(192, 12, 3),
  'deit-tiny-distilled': { ...base(192, 12, 3), tokens: 'cls+dist' },
  /** The small CIFAR-style showcase model: 32 px, patch 8, dim 256, 2 blocks. */
  'cifar-small': { ...base(256, 2, 8, 8), imageSize: 32, mlpDim: 512, numClasses: 10, cropPct: 1, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  /** From scratch on Fashion-MNIST: 28 px grey, patch 4, dim 64, depth 4, 4 heads, MLP 128. */
  'fashion-mnist': { ...base(64, 4, 4, 4), imageSize: 28, inChannels: 1, mlpDim: 128, numClasses: 10, cropPct: 1, mean: [0.2860], std: [0.3530] },
} satisfies Record<string, ViTConfig>;

export type PresetName = keyof typeof PRESETS;

/** Checks that a config makes sense; throws naming the first field that does not. */
export function validateConfig(c: ViTConfig): void {
  validateModelConfig(c);
  checkPositiveInts(c, ['patchSize', 'dim', 'depth', 'heads', 'mlpDim']);
  if (c.dim % c.heads !== 0) throw new Error(`config: dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (c.imageSize % c.patchSize !== 0) throw new Error(`config: imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  if (!(c.eps > 0)) throw new Error(`config: eps must be positive, got ${c.eps}`);
  if (!['cls', 'cls+dist', 'none'].includes(c.tokens)) throw new Error(`config: tokens must be "cls", "cls+dist" or "none", got ${JSON.stringify(c.tokens)}`);
  if (c.globalPool !== 'token' && c.globalPool !== 'avg') throw new Error(`config: globalPool must be "token" or "avg", got ${JSON.stringify(c.globalPool)}`);
  if (c.globalPool === 'token' && c.tokens === 'none') throw new Error('config: globalPool "token" needs a class token');
  if (c.globalPool === 'avg' && c.tokens === 'cls+dist') throw new Error('config: a distillation token pools its own token; globalPool must be "token"');
  if (c.norm !== 'pre' && c.norm !== 'post') throw new Error(`config: norm must be "pre" or "post", got ${JSON.stringify(c.norm)}`);
}

export function prefixTokens(c: ViTConfig): number {
  return c.tokens === 'cls+dist' ? 2 : c.tokens === 'cls' ? 1 : 0;
}
