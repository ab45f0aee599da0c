// Fresh weights for training from scratch, as timm initialises a ViT: linear and patch-embedding
// weights, position embedding and tokens from a normal distribution truncated at 2 std (std 0.02),
// biases zero, LayerNorm weights one. Seeded, so runs reproduce.
import { mulberry32 } from '../training/random';
import type { ViTConfig } from './config';
import { parameterShapes } from './params';
import type { HostWeights } from './vit';

/** All parameters, or those `include` names (a new head for fine-tuning). */
export function initWeights(config: ViTConfig, seed = 0, include: (name: string) => boolean = () => true): HostWeights {
  const uniform = mulberry32(seed);
  const truncNormal = (std: number) => {
    for (;;) {
      const z = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
      if (Math.abs(z) <= 2) return z * std;
    }
  };
  const weights: HostWeights = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    if (!include(name)) continue;
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/norm\d?\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = truncNormal(0.02);
    weights.set(name, { shape, data });
  }
  return weights;
}

/**
 * Where fine-tuning a model on `classes` starts: its body as it is, and a head whose row for each
 * class the model already knows (by name) is that class's trained row; new classes get fresh rows.
 * The model's own classes in order keep the head as it is.
 */
export function fineTuneStart(from: ViTConfig, weights: HostWeights, classes: string[], seed = 0): { config: ViTConfig; weights: HostWeights } {
  const config = { ...from, numClasses: classes.length, labels: classes };
  const known = classes.map((c) => from.labels?.indexOf(c) ?? -1);
  const start: HostWeights = new Map([...weights].filter(([name]) => !name.startsWith('head')));
  const D = from.dim;
  for (const [name, fresh] of initWeights(config, seed, (n) => n.startsWith('head'))) {
    const trained = weights.get(name)!.data;
    const width = name.endsWith('.weight') ? D : 1;
    known.forEach((j, i) => j >= 0 && fresh.data.set(trained.subarray(j * width, (j + 1) * width), i * width));
    start.set(name, fresh);
  }
  return { config, weights: start };
}
