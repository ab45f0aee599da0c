// The model families this engine knows, and which one a config belongs to. A family is its own
// folder (config, parameters, planner, checkpoint names) plus one line here.
import type { Gpu } from '../gpu/device';
import type { ModelConfig, ModelFamily } from '../graph/family';
import { Model, type HostWeights, type Shapes } from '../graph/model';
import { parseConfig } from '../weights/config';
import type { KeyMap } from '../weights/keys';
import { SWIN_PRESETS, type SwinConfig } from './swin/config';
import { swin } from './swin/family';
import { isMicrosoftSwin, isSwinConfig, SWIN_KEYS, swinConfigFrom } from './swin/keys';
import { PRESETS as VIT_PRESETS, type ViTConfig } from './vit/config';
import { vit } from './vit/family';
import { VIT_KEYS } from './vit/keys';

/** A config of any family this engine knows. */
export type AnyConfig = ViTConfig | SwinConfig;

/** Every family's presets, by name: what training from scratch starts from. */
export const PRESETS: Record<PresetName, AnyConfig> = { ...VIT_PRESETS, ...SWIN_PRESETS };
export type PresetName = keyof typeof VIT_PRESETS | keyof typeof SWIN_PRESETS;

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
  /** The family, as messages name it. */
  family: string;
  keys: KeyMap;
  /** Whether tensor names are this family's (timm's or Hugging Face's). */
  ownsNames(names: readonly string[]): boolean;
  /** Whether a JSON config names this family (an architecture, a model type). */
  describes(json: unknown): boolean;
  /** The full config from the checkpoint's JSON config (or none) and its timm-named weights. */
  config(json: unknown, weights: Shapes): AnyConfig;
}

const FORMATS: CheckpointFormat[] = [
  {
    family: 'ViT', keys: VIT_KEYS, config: parseConfig,
    ownsNames: (names) => names.some((n) => /^((vit|deit|dinov2|dinov2_with_registers)\.)?(blocks\.\d+\.|encoder\.layer\.\d+\.)/.test(n)),
    describes: (json) => !isSwinConfig(json),
  },
  {
    family: 'Swin', keys: SWIN_KEYS, config: swinConfigFrom,
    ownsNames: (names) => names.some((n) => /^(swin\.)?(layers|encoder\.layers)\.\d+\.blocks\./.test(n)),
    describes: isSwinConfig,
  },
];

/**
 * The format of a checkpoint with these tensor names and this JSON config: the family whose
 * names the tensors carry, or with no blocks to go by, the one the config names. A checkpoint
 * whose names belong to two families, or whose config names another family, is refused.
 */
export function checkpointFormat(json: unknown, names: readonly string[]): CheckpointFormat {
  const byNames = FORMATS.filter((f) => f.ownsNames(names));
  if (byNames.length > 1) throw new Error(`checkpoint: mixes the tensors of ${byNames.map((f) => `a ${f.family}`).join(' and ')}`);
  const byConfig = json == null ? undefined : FORMATS.find((f) => f.describes(json));
  const format = byNames[0] ?? byConfig ?? FORMATS[0]!;
  if (byConfig && byNames[0] && byConfig !== byNames[0]) {
    throw new Error(`checkpoint: the config describes a ${byConfig.family} but the tensors are a ${byNames[0].family}'s`);
  }
  if (format.keys === SWIN_KEYS && isMicrosoftSwin(names)) {
    throw new Error('checkpoint: the original Microsoft Swin layout (downsample at the end of a stage, head.weight, stored attn_mask) is not supported; load it into timm (swin_*, pretrained_cfg file) and save its state_dict, or use the Hugging Face conversion');
  }
  return format;
}
