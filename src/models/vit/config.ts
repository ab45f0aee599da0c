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
  /**
   * LayerScale (timm `init_values`): each residual branch is scaled per channel, x + gamma * f(x),
   * gamma at `blocks.N.ls1.gamma` / `ls2.gamma` [D]; the value is gamma's initialisation. Absent:
   * no LayerScale.
   */
  layerScale?: number;
  /** Register tokens (timm `reg_tokens`, `reg_token` [1, R, D]) after the class token; not pooled. Default 0. */
  regTokens?: number;
  /** timm `no_embed_class`: the position embedding covers the patches only; prefix tokens take none. Default false. */
  noEmbedClass?: boolean;
  /**
   * timm `fc_norm`: the final norm after pooling (fc_norm) instead of over the tokens (norm).
   * Default: with avg pooling. Pre-norm only.
   */
  fcNorm?: boolean;
  /** timm `final_norm`: false drops the final norm altogether (norm and fc_norm). Default true. */
  finalNorm?: boolean;
}

const base = (dim: number, depth: number, heads: number, patchSize = 16): ViTConfig => ({
  imageSize: 224, patchSize, inChannels: 3, dim, depth, heads, mlpDim: 4 * dim, qkvBias: true, eps: 1e-6,
  tokens: 'cls', globalPool: 'token', norm: 'pre', ...IMAGENET,
});

function dinov2(dim: number, depth: number, heads: number): ViTConfig {
  return { ...base(dim, depth, heads, 14), imageSize: 518, layerScale: 1e-5, numClasses: 0, cropPct: 1 };
}

export const PRESETS = {
  'vit-tiny': base(192, 12, 3),
  'vit-small': base(384, 12, 6),
  'vit-base': base(768, 12, 12),
  'vit-large': base(1024, 24, 16),
  'vit-huge': { ...base(1280, 32, 16, 14) },
  'deit-tiny': base(192, 12, 3),
  'deit-tiny-distilled': { ...base(192, 12, 3), tokens: 'cls+dist' },
  // DeiT-III (timm deit3_*: init_values 1e-6, no_embed_class), ImageNet-1k classifiers.
  'deit3-small': { ...base(384, 12, 6), layerScale: 1e-6, noEmbedClass: true, cropPct: 0.9 },
  'deit3-base': { ...base(768, 12, 12), layerScale: 1e-6, noEmbedClass: true, cropPct: 0.9 },
  // DINOv2 backbones (timm vit_*_patch14_dinov2: patch 14, 518 px, init_values 1e-5; no head).
  // With registers (`_reg4_`): 4 register tokens and a position embedding without prefix tokens.
  'dinov2-small': dinov2(384, 12, 6),
  'dinov2-base': dinov2(768, 12, 12),
  'dinov2-large': dinov2(1024, 24, 16),
  'dinov2-small-reg4': { ...dinov2(384, 12, 6), regTokens: 4, noEmbedClass: true },
  'dinov2-base-reg4': { ...dinov2(768, 12, 12), regTokens: 4, noEmbedClass: true },
  'dinov2-large-reg4': { ...dinov2(1024, 24, 16), regTokens: 4, noEmbedClass: true },
  /**
   * The CIFAR-10 showcase: 32 px, patch 8 (16 patches), width 256, 2 blocks of 2 heads, MLP 256,
   * LayerNorm eps 1e-5, no class token, the mean of the patch tokens straight into the head (no
   * final norm, no fc_norm: timm global_pool='avg', fc_norm=False, final_norm=False); 847,626
   * parameters. The article does not say where its norms sit; pre-norm (timm's) is our choice.
   */
  'cifar-small': {
    ...base(256, 2, 2, 8), imageSize: 32, mlpDim: 256, eps: 1e-5, tokens: 'none', globalPool: 'avg', fcNorm: false, finalNorm: false,
    numClasses: 10, cropPct: 1, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616],
  },
  /**
   * The post-norm two-class ViT (a cat/dog classifier): 224 px, patch 16, width 768, the position
   * embedding on the patches only and then the class token (timm's no_embed_class), post-norm
   * blocks (norm(x + f(x)), LayerNorm eps 1e-5, so no final norm), the class token into a 2-class
   * head. The article leaves depth, heads and MLP width open: ViT-B's 12 blocks of 12 heads and
   * MLP 3072 are our choice. Its nn.MultiheadAttention without batch_first would attend across
   * the batch; here each image attends over its own tokens, as intended.
   */
  'vit-postnorm-2class': { ...base(768, 12, 12), norm: 'post', noEmbedClass: true, eps: 1e-5, numClasses: 2 },
  /** From scratch on Fashion-MNIST: 28 px grey, patch 4, dim 64, depth 4, 4 heads, MLP 128. */
  'fashion-mnist': { ...base(64, 4, 4, 4), imageSize: 28, inChannels: 1, mlpDim: 128, numClasses: 10, cropPct: 1, mean: [0.2860], std: [0.3530] },
} satisfies Record<string, ViTConfig>;

export type PresetName = keyof typeof PRESETS;

/**
 * What a timm architecture name implies beyond timm's VisionTransformer defaults (its
 * `model_args`, which checkpoint configs do not repeat): `deit3_*` LayerScale (init 1e-6) and no
 * class token in the position embedding; `*_dinov2` LayerScale (init 1e-5); `*_regN_*` N register
 * tokens and a position embedding without prefix tokens; `*_patchP_*` the patch size. A tag
 * (`.lvd142m`) is ignored. DINOv2-giant's SwiGLU MLP is refused.
 */
export function architectureDefaults(architecture: string): Partial<ViTConfig> {
  const name = architecture.replace(/\..*$/, '');
  if (/giant.*dinov2/.test(name)) throw new Error(`config: architecture "${architecture}" has a SwiGLU MLP, which this engine does not support`);
  const out: Partial<ViTConfig> = {};
  const patch = /_patch(\d+)(_|$)/.exec(name);
  if (patch) out.patchSize = Number(patch[1]);
  if (/^deit3_/.test(name)) Object.assign(out, { layerScale: 1e-6, noEmbedClass: true });
  if (/_dinov2$/.test(name)) out.layerScale = 1e-5;
  const reg = /_reg(\d+)(_|$)/.exec(name);
  if (reg) Object.assign(out, { regTokens: Number(reg[1]), noEmbedClass: true });
  return out;
}

/** Checks that a config makes sense; throws naming the first field that does not. */
export function validateConfig(c: ViTConfig): void {
  validateModelConfig(c, { headless: true });
  checkPositiveInts(c, ['patchSize', 'dim', 'depth', 'heads', 'mlpDim']);
  if (c.dim % c.heads !== 0) throw new Error(`config: dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (c.imageSize % c.patchSize !== 0) throw new Error(`config: imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  if (!(c.eps > 0)) throw new Error(`config: eps must be positive, got ${c.eps}`);
  if (!['cls', 'cls+dist', 'none'].includes(c.tokens)) throw new Error(`config: tokens must be "cls", "cls+dist" or "none", got ${JSON.stringify(c.tokens)}`);
  if (c.globalPool !== 'token' && c.globalPool !== 'avg') throw new Error(`config: globalPool must be "token" or "avg", got ${JSON.stringify(c.globalPool)}`);
  if (c.globalPool === 'token' && c.tokens === 'none') throw new Error('config: globalPool "token" needs a class token');
  if (c.globalPool === 'avg' && c.tokens === 'cls+dist') throw new Error('config: a distillation token pools its own token; globalPool must be "token"');
  if (c.norm !== 'pre' && c.norm !== 'post') throw new Error(`config: norm must be "pre" or "post", got ${JSON.stringify(c.norm)}`);
  if (c.layerScale !== undefined && !Number.isFinite(c.layerScale)) throw new Error(`config: layerScale must be a number (gamma's initial value), got ${JSON.stringify(c.layerScale)}`);
  const R = c.regTokens ?? 0;
  if (!Number.isInteger(R) || R < 0) throw new Error(`config: regTokens must be a non-negative integer, got ${JSON.stringify(c.regTokens)}`);
  if (R > 0 && c.tokens === 'cls+dist') throw new Error('config: register tokens with a distillation token is not a timm model');
  for (const k of ['noEmbedClass', 'fcNorm', 'finalNorm'] as const) {
    if (c[k] !== undefined && typeof c[k] !== 'boolean') throw new Error(`config: ${k} must be true or false, got ${JSON.stringify(c[k])}`);
  }
  if (c.fcNorm && c.globalPool !== 'avg') throw new Error('config: fcNorm (a norm after pooling) goes with globalPool "avg"');
  if (c.fcNorm && c.tokens === 'cls+dist') throw new Error('config: fcNorm with a distillation token is not supported');
}

/** Tokens before the patches: class, distillation and register tokens. */
export function prefixTokens(c: ViTConfig): number {
  return (c.tokens === 'cls+dist' ? 2 : c.tokens === 'cls' ? 1 : 0) + (c.regTokens ?? 0);
}

/** Rows of the position embedding before the patches' (none with noEmbedClass). */
export function posEmbedPrefix(c: ViTConfig): number {
  return c.noEmbedClass ? 0 : prefixTokens(c);
}
