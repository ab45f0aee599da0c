// Fresh weights for training from scratch, as timm initialises its models: linear and
// patch-embedding weights, position embedding, tokens and relative position bias tables from a
// normal distribution truncated at 2 std (std 0.02), biases zero, LayerNorm weights one. Seeded,
// so runs reproduce.
import type { ModelConfig } from '../graph/family';
import type { HostWeights } from '../graph/model';
import { mulberry32 } from '../training/random';
import { isNormParam } from './common';
import { familyOf } from './registry';

/** All parameters, or those `include` names (a new head for fine-tuning). */
export function initWeights(config: ModelConfig, seed = 0, include: (name: string) => boolean = () => true): HostWeights {
  const uniform = mulberry32(seed);
  const truncNormal = (std: number) => {
    for (;;) {
      const z = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
      if (Math.abs(z) <= 2) return z * std;
    }
  };
  const weights: HostWeights = new Map();
  for (const [name, shape] of familyOf(config).parameterShapes(config)) {
    if (!include(name)) continue;
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (isNormParam(name) && name.endsWith('.weight')) data.fill(1);
    // LayerScale starts at the config's init_values (timm's LayerScale default 1e-5 where unstated).
    else if (name.endsWith('.gamma')) data.fill((config as { layerScale?: number }).layerScale ?? 1e-5);
    else if (!name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = truncNormal(0.02);
    weights.set(name, { shape, data });
  }
  return weights;
}

/**
 * Where fine-tuning a model on `classes` starts: its body as it is, and a classifier whose row for
 * each class the model already knows (by name) is that class's trained row; new classes get fresh
 * rows. The model's own classes in order keep the classifier as it is.
 */
export function fineTuneStart<C extends ModelConfig>(from: C, weights: HostWeights, classes: string[], seed = 0): { config: C; weights: HostWeights } {
  const config = { ...from, numClasses: classes.length, labels: classes };
  const known = classes.map((c) => from.labels?.indexOf(c) ?? -1);
  // The new config's classifier: a backbone (numClasses 0) has none of its own to start from.
  const classifier = new Set(familyOf(config).parameterGroups(config).classifier);
  const start: HostWeights = new Map([...weights].filter(([name]) => !classifier.has(name)));
  for (const [name, fresh] of initWeights(config, seed, (n) => classifier.has(n))) {
    // A backbone (no classifier yet, as DINOv2) starts every class fresh.
    const trained = weights.get(name)?.data;
    const width = fresh.shape.length === 2 ? fresh.shape[1]! : 1;
    if (trained) known.forEach((j, i) => j >= 0 && fresh.data.set(trained.subarray(j * width, (j + 1) * width), i * width));
    start.set(name, fresh);
  }
  return { config, weights: start };
}
