// The model families this engine knows, and which one a config belongs to. A family is its own
// folder (config, parameters, planner, checkpoint names) plus one line here.
import type { Gpu } from '../gpu/device';
import type { ModelConfig, ModelFamily } from '../graph/family';
import { Model, type HostWeights, type Shapes } from '../graph/model';
import { parseConfig } from '../weights/config';
import type { KeyMap } from '../weights/keys';
import type { SwinConfig } from './swin/config';
import { swin } from './swin/family';
import { isMicrosoftSwin, isSwinConfig, SWIN_KEYS, swinConfigFrom } from './swin/keys';
import type { ViTConfig } from './vit/config';
import { vit } from './vit/family';
import { VIT_KEYS } from './vit/keys';

/** A config of any family this engine knows. */
export type AnyConfig = ViTConfig | SwinConfig;

const FAMILIES: Record<string, ModelFamily<never>> = {
  vit,
  swin,
};

/** The family that builds `config` (absent: a ViT, as configs written before families existed). */
export function familyOf<C extends ModelConfig>(config: C): ModelFamily<C> {
  const name = config.family ?? 'vit';
  const family = FAMILIES[name];
  if (!family) throw new Error(`config: unknown model family "${name}"; known: ${Object.keys(FAMILIES).join(', ')}`);
  return family as unknown as ModelFamily<C>;
}

/** Checks the config and the weights against it, then uploads them. */
export function createModel<C extends ModelConfig>(gpu: Gpu, config: C, weights: HostWeights): Model<C> {
  return Model.create(gpu, familyOf(config), config, weights);
}

/** How a family's checkpoints read: their names, and their config from its JSON and the weights. */
export interface CheckpointFormat {
  keys: KeyMap;
  /** The full config from the checkpoint's JSON config (or none) and its timm-named weights. */
  config(json: unknown, weights: Shapes): AnyConfig;
}

const FORMATS = {
  vit: { keys: VIT_KEYS, config: parseConfig },
  swin: { keys: SWIN_KEYS, config: swinConfigFrom },
} satisfies Record<string, CheckpointFormat>;

/**
 * The format of a checkpoint with these tensor names and this JSON config: a Swin when the config
 * says so (timm `architecture: swin_*`, Hugging Face `model_type: swin`) or the names are a Swin's;
 * otherwise a ViT. A checkpoint whose names belong to one family and whose config to the other is
 * refused, naming both.
 */
export function checkpointFormat(json: unknown, names: readonly string[]): CheckpointFormat {
  const swinNames = names.some((n) => /^(swin\.)?(layers|encoder\.layers)\.\d+\.blocks\./.test(n));
  const vitNames = names.some((n) => /^((vit|deit|dinov2|dinov2_with_registers)\.)?(blocks\.\d+\.|encoder\.layer\.\d+\.)/.test(n));
  if (swinNames && vitNames) throw new Error('checkpoint: mixes a Swin\'s tensors (layers.N.blocks.M.*) with a ViT\'s (blocks.N.*)');
  const swinConfig = json != null && isSwinConfig(json);
  if (swinNames && isMicrosoftSwin(names)) {
    throw new Error('checkpoint: the original Microsoft Swin layout (downsample at the end of a stage, head.weight, stored attn_mask) is not supported; load it into timm (swin_*, pretrained_cfg file) and save its state_dict, or use the Hugging Face conversion');
  }
  if (json != null && swinConfig !== swinNames && (swinNames || vitNames)) {
    throw new Error(`checkpoint: the config describes a ${swinConfig ? 'Swin' : 'ViT'} but the tensors are a ${swinNames ? 'Swin' : 'ViT'}'s`);
  }
  return swinNames || swinConfig ? FORMATS.swin : FORMATS.vit;
}
