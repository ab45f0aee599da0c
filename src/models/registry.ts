// The model families this engine knows, and which one a config belongs to. A family is its own
// folder (config, parameters, planner, checkpoint names) plus one line here.
import type { Gpu } from '../gpu/device';
import type { ModelConfig, ModelFamily } from '../graph/family';
import { Model, type HostWeights, type Shapes } from '../graph/model';
import { parseConfig } from '../weights/config';
import type { KeyMap } from '../weights/keys';
import type { ViTConfig } from './vit/config';
import { vit } from './vit/family';
import { VIT_KEYS } from './vit/keys';

/** A config of any family this engine knows. */
export type AnyConfig = ViTConfig;

const FAMILIES: Record<string, ModelFamily<never>> = {
  vit,
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

const VIT_FORMAT: CheckpointFormat = { keys: VIT_KEYS, config: parseConfig };

/** The format of a checkpoint with these tensor names and this JSON config. */
export function checkpointFormat(_json: unknown, _names: readonly string[]): CheckpointFormat {
  return VIT_FORMAT;
}
