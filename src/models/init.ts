// Fresh weights for training from scratch, as timm initialises a ViT: linear and patch-embedding
// weights, position embedding and tokens from a normal distribution truncated at 2 std (std 0.02),
// biases zero, LayerNorm weights one. Seeded, so runs reproduce.
import type { ViTConfig } from './config';
import { parameterShapes } from './params';
import type { HostWeights } from './vit';

export function initWeights(config: ViTConfig, seed = 0): HostWeights {
  let s = seed >>> 0;
  const uniform = () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const truncNormal = (std: number) => {
    for (;;) {
      const z = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
      if (Math.abs(z) <= 2) return z * std;
    }
  };
  const weights: HostWeights = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/norm\d?\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = truncNormal(0.02);
    weights.set(name, { shape, data });
  }
  return weights;
}
