// One training step of a model against timm's stored loss and gradients (a golden file's `labels`,
// `loss` and `grad.<name>` for every parameter): the loss, which tensors train, and each
// gradient's relative L2 error, all read back at once.
import { expect } from 'vitest';
import { readTensors } from '../../src/gpu/tensor';
import type { Model } from '../../src/graph/model';
import { planTraining } from '../../src/graph/training';
import type { SafetensorsFile } from '../../src/weights/safetensors';
import { relL2 } from './compare';
import { GRAD_REL_L2 } from '../tolerances';

export async function expectGoldenGradients(model: Model, input: Float32Array, golden: SafetensorsFile, what: string): Promise<void> {
  const training = await planTraining(model, { batch: 2, smoothing: 0 });
  try {
    training.run(input, golden.get('labels'));
    const [losses, ...grads] = await readTensors(model.gpu, [training.losses[0]!, ...training.trainable.map((n) => training.grads.get(n)!)]);
    const loss = (losses![0]! + losses![1]!) / 2;
    expect(Math.abs(loss - golden.get('loss')[0]!) / golden.get('loss')[0]!).toBeLessThan(1e-5);
    const expected = golden.names().filter((n) => n.startsWith('grad.')).map((n) => n.slice(5));
    expect([...training.trainable].sort()).toEqual(expected.sort());
    let worst = { name: '', err: 0 };
    training.trainable.forEach((name, i) => {
      const err = relL2(grads[i]!, golden.get(`grad.${name}`));
      if (!(err <= worst.err)) worst = { name, err };
    });
    console.log(`${what}: loss ${loss.toFixed(6)}; ${training.trainable.length} gradients, worst relative L2 ${worst.err.toExponential(2)} (${worst.name})`);
    expect(worst.err, worst.name).toBeLessThan(GRAD_REL_L2);
  } finally {
    training.destroy();
  }
}
