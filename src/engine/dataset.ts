// Datasets as the engine holds them (preprocessed tensors and labels) and passes of a forward plan
// over them: evaluation, and the output of frozen blocks computed once for training past them.
import { numel, readTensor } from '../gpu/tensor';
import { planForward, type ForwardPlan } from '../graph/forward';
import type { Model } from '../graph/model';
import { countCorrect } from '../training/accuracy';

export interface Dataset {
  /** [N, C, S, S] images preprocessed for the model, or [N, T, D] block inputs (frozenOutputs). */
  inputs: Float32Array;
  labels: Int32Array;
  count: number;
}

/**
 * Runs `plan` over `data` in batches of the plan's size, the last one padded with zeros; `each`
 * reads what it needs of batch [start, start + n) before the next one runs.
 */
export async function forEachBatch(plan: ForwardPlan, data: Dataset, each: (start: number, n: number) => Promise<void>): Promise<void> {
  if (data.count === 0) return;
  const per = data.inputs.length / data.count;
  const { batch } = plan;
  const input = new Float32Array(batch * per);
  for (let start = 0; start < data.count; start += batch) {
    const n = Math.min(batch, data.count - start);
    input.set(data.inputs.subarray(start * per, (start + n) * per));
    if (n < batch) input.fill(0, n * per);
    plan.run(input);
    await each(start, n);
  }
}

/** Accuracy of `plan`'s model on `data` (images, or block inputs for a plan that starts past them). */
export async function evaluate(plan: ForwardPlan, model: Model, data: Dataset): Promise<number> {
  if (data.count === 0) return Number.NaN;
  let correct = 0;
  await forEachBatch(plan, data, async (start, n) => {
    correct += countCorrect(await readTensor(model.gpu, plan.logits), model.config.numClasses, data.labels.subarray(start, start + n), n);
  });
  return correct / data.count;
}

/**
 * What blocks [0, block) of `model` output for each image of `data`: block `block`'s input,
 * [count, T, D], as a dataset with the same labels. `onImages` hears after every batch.
 */
export async function frozenOutputs(model: Model, block: number, data: Dataset, batch: number, onImages?: (done: number) => void): Promise<Dataset> {
  if (data.count === 0) return { inputs: new Float32Array(0), labels: data.labels, count: 0 };
  const plan = await planForward(model, { batch: Math.max(1, Math.min(batch, data.count)), toBlock: block });
  try {
    const out = plan.output;
    const row = numel(out.shape) / plan.batch;
    const inputs = new Float32Array(data.count * row);
    await forEachBatch(plan, data, async (start, n) => {
      inputs.set((await readTensor(model.gpu, out)).subarray(0, n * row), start * row);
      onImages?.(start + n);
    });
    return { inputs, labels: data.labels, count: data.count };
  } finally {
    plan.destroy();
  }
}
