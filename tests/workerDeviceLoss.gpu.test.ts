// Device loss through the worker, by the test hook that destroys the worker's device behind the
// engine's back (the path a driver reset takes): the page is told as it happens, a classification
// lost between its forward pass and its readback is retried on a new device, and a training lost
// in its second epoch goes on by itself from the first epoch's checkpoint and ends as the
// uninterrupted run does. Also: a classification sent during a training waits for it, answers with
// the trained model and leaves the training as it would have been.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initWeights } from '../src/models/init';
import { PRESETS } from '../src/models/vit/config';
import { exportWeights } from '../src/training/checkpoint';
import type { DeviceLostEvent, TrainProgress, TrainRequest } from '../src/worker/api';
import { startEngineWorker, type EngineClient } from '../src/worker/start';
import { SAME_COMPUTATION_REL } from './tolerances';

let engine: EngineClient;
const lost: DeviceLostEvent[] = [];
beforeAll(async () => {
  engine = startEngineWorker();
  await engine.init();
  await engine.onDeviceLost((e) => lost.push(e));
});
afterAll(() => engine.terminate());

const image = new Float32Array(784).map((_, i) => Math.sin(i / 7));
const logits = async () => Array.from((await engine.classifyTensor(image.slice(), 1, 28, { logits: true }))[0]!.logits!);

// 2 epochs of 2 steps of 8 images: the smallest run with a finished epoch before a loss mid-epoch.
const REQUEST: TrainRequest = {
  model: 'fashion-mnist', dataset: { kind: 'fashion-mnist', train: 16, holdout: 8 },
  settings: { epochs: 2, batch: 8, trainable: 'all', lr: 2e-3, warmupEpochs: 0.5, seed: 1 },
};
const isStep = (p: TrainProgress) => p.evalAccuracy === undefined && !p.recovered && !p.features;

/** An uninterrupted run: its progress, result and logits afterwards. */
let reference: { events: TrainProgress[]; evalAccuracy: number; logits: number[] };

function expectSameLosses(got: TrainProgress[], want: TrainProgress[]): void {
  expect(got.map((p) => [p.epoch, p.step])).toEqual(want.map((p) => [p.epoch, p.step]));
  got.forEach((p, i) => expect(Math.abs(p.loss - want[i]!.loss), `epoch ${p.epoch} step ${p.step}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * want[i]!.loss));
}

function expectSameLogits(got: number[], want: number[]): void {
  got.forEach((v, k) => expect(Math.abs(v - want[k]!), `class ${k}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * Math.max(1, Math.abs(want[k]!))));
}

describe('device loss through the worker', () => {
  test('lost mid-classification: the page is told, and the call is retried on a new device with the same logits', async () => {
    const config = { ...PRESETS['fashion-mnist']!, numClasses: 10 };
    const bytes = exportWeights(initWeights(config, 5), config);
    await engine.loadModel('small', bytes.buffer as ArrayBuffer);
    const before = await logits();
    await engine.debugLoseDevice('next-submit');
    expect(await logits()).toEqual(before);
    await expect.poll(() => lost.length).toBe(1);
    expect(lost[0]).toMatchObject({ reason: expect.stringMatching(/destroyed/i), recovery: 'recreate' });
    expect(lost[0]!.message).toMatch(/uploads the model again from its checkpoint, read again/);
  });

  test('lost in the second epoch: the run resumes from the first epoch\'s checkpoint by itself and ends as an uninterrupted one', async () => {
    const events: TrainProgress[] = [];
    const whole = await engine.train(REQUEST, (p) => events.push(p));
    reference = { events, evalAccuracy: whole.evalAccuracy, logits: await logits() };

    const got: TrainProgress[] = [];
    lost.length = 0;
    await engine.debugLoseDevice({ afterSteps: 3 }); // epoch 2's first step done, its second lost
    const result = await engine.train(REQUEST, (p) => got.push(p));
    const at = got.findIndex((p) => p.recovered);
    console.log(`${got[at]?.recovered?.message} (${got[at]?.recovered?.reason})`);
    expect(got[at]!.recovered).toMatchObject({ fromEpoch: 1, message: 'device lost: resumed from the checkpoint of epoch 1' });
    expect(got.filter((p) => p.recovered)).toHaveLength(1);
    await expect.poll(() => lost.length).toBe(1);
    expect(lost[0]!.message).toMatch(/training goes on from its last finished epoch's checkpoint/);
    // Before the loss: epoch 1 whole and epoch 2's first step; after it, epoch 2 again from its start.
    expectSameLosses(got.slice(0, at).filter(isStep), events.filter(isStep).slice(0, 3));
    expectSameLosses(got.slice(at).filter(isStep), events.filter((p) => isStep(p) && p.epoch === 1));
    // The finished epoch is not lost: its evaluation is not repeated.
    expect(got.filter((p) => p.evalAccuracy !== undefined).map((p) => p.epoch)).toEqual([0, 1]);
    expect(result).toMatchObject({ stopped: false, steps: 4, evalAccuracy: whole.evalAccuracy });
    expectSameLogits(await logits(), reference.logits);
  });

  test('a classification sent during a training waits for it, answers with the trained model and changes nothing', async () => {
    expect(reference, 'needs the uninterrupted run of the test before').toBeDefined();
    const got: TrainProgress[] = [];
    let during: Promise<number[]> | undefined;
    let trained = false;
    let answeredAfterTraining = false;
    const result = await engine.train(REQUEST, (p) => {
      got.push(p);
      during ??= engine.classifyTensor(image.slice(), 1, 28, { logits: true }).then((r) => {
        answeredAfterTraining = trained;
        return Array.from(r[0]!.logits!);
      });
    });
    trained = true;
    expect(during).toBeDefined();
    const answered = await during!;
    expect(answeredAfterTraining).toBe(true);
    expectSameLosses(got.filter(isStep), reference.events.filter(isStep));
    expect(result.evalAccuracy).toBe(reference.evalAccuracy);
    expect(answered).toEqual(await logits());
    expectSameLogits(answered, reference.logits);
  });
});
