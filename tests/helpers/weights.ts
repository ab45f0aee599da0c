// Seeded model weights at initialisation scales: O(1) activations, as in a real network.
import type { ModelConfig } from '../../src/graph/family';
import type { HostWeights } from '../../src/graph/model';
import { familyOf } from '../../src/models/registry';
import { randn } from './random';

/** Every parameter of `c`'s family. */
export function randomWeights<C extends ModelConfig>(c: C, seed: number): HostWeights {
  const weights: HostWeights = new Map();
  familyOf(c).parameterShapes(c).forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNormWeight = /norm\d?\.weight$/.test(name);
    // LayerScale gammas at the scale of a trained model's, so the branches matter.
    const data = isNormWeight ? randn(n, seed + i, 0.1, 1) : name.endsWith('.gamma') ? randn(n, seed + i, 0.3, 0.5) : randn(n, seed + i, name.endsWith('.bias') ? 0.05 : 0.1);
    weights.set(name, { shape, data });
  });
  return weights;
}
