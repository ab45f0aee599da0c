// Runs kept for resuming after a reload, in Chromium's IndexedDB (no GPU work): the cap on kept
// images, one run per page, a run interrupted only while its checkpoint exists, and forgetting a
// run takes its checkpoint along.
import { afterEach, describe, expect, test } from 'vitest';
import { forgetRun, interruptedRun, keepRun, type KeptRun } from '../src/training/runs';
import { checkpointEpoch, loadCheckpointBytes, saveCheckpoint } from '../src/training/storage';
import { serializeCheckpoint } from '../src/training/checkpoint';
import { PRESETS } from '../src/models/registry';

const PAGE = 'test-page';

function run(key: string, startedAt: number, sizes: number[]): KeptRun {
  return {
    key, page: PAGE, baseName: 'DeiT-tiny', startedAt, imagesKept: true,
    request: {
      model: 'current', checkpointKey: key, settings: { epochs: 4 },
      dataset: { kind: 'images', classes: [{ name: 'a', images: sizes.map((size, i) => ({ name: `${i}.png`, size, blob: new Blob([new Uint8Array(size).fill(i)]) })) }] },
    },
  };
}

/** A real checkpoint's bytes (weights, moments, step), ending epoch `epoch`. */
function checkpoint(epoch: number): Uint8Array {
  const w = { shape: [2], data: new Float32Array([1, 2]) };
  return serializeCheckpoint({ name: 'test', config: PRESETS['fashion-mnist'], step: 3 * epoch, epoch, weights: new Map([['w', w]]), optimizer: new Map([['m.w', new Float32Array(2)]]) });
}

const keys: string[] = [];
afterEach(async () => {
  for (const k of keys.splice(0)) await forgetRun(k);
});

describe('kept runs', () => {
  test('images up to the cap are kept as Blobs; over it, their names and sizes only', async () => {
    keys.push('r1');
    const kept = await keepRun(run('r1', 1, [10, 20]), 30);
    expect(kept.warning).toBeUndefined();
    await saveCheckpoint('r1', checkpoint(2));
    const back = await interruptedRun(PAGE);
    expect(back?.epochsDone).toBe(2);
    const images = back!.request.dataset.kind === 'images' ? back!.request.dataset.classes[0]!.images : [];
    expect(images.map((i) => [i.name, i.size, i.blob?.size])).toEqual([['0.png', 10, 10], ['1.png', 20, 20]]);
    expect(new Uint8Array(await images[1]!.blob!.arrayBuffer())).toEqual(new Uint8Array(20).fill(1));

    keys.push('r2');
    const over = await keepRun(run('r2', 2, [10, 21]), 30);
    expect(over.warning).toBe('its images take 31 bytes, over the 30 bytes kept in this browser');
    expect(over.run.imagesKept).toBe(false);
    await saveCheckpoint('r2', checkpoint(1));
    const lean = await interruptedRun(PAGE);
    expect(lean!.imagesKept).toBe(false);
    expect(lean!.request.dataset.kind === 'images' && lean!.request.dataset.classes[0]!.images).toEqual([{ name: '0.png', size: 10 }, { name: '1.png', size: 21 }]);
  });

  test('a new run replaces the page\'s earlier one and its checkpoint; other pages keep theirs', async () => {
    keys.push('old', 'new', 'other');
    await keepRun(run('old', 1, [1]));
    await saveCheckpoint('old', checkpoint(1));
    await keepRun({ ...run('other', 1, [1]), page: 'another-page' });
    await saveCheckpoint('other', checkpoint(3));
    await keepRun(run('new', 2, [1]));
    expect(await loadCheckpointBytes('old')).toBeNull();
    // The new run has no checkpoint yet: nothing to resume, and it is dropped on the way.
    expect(await interruptedRun(PAGE)).toBeNull();
    expect((await interruptedRun('another-page'))?.epochsDone).toBe(3);
  });

  test('forgetting a run deletes its checkpoint; a checkpoint alone is no run', async () => {
    keys.push('gone');
    await keepRun(run('gone', 1, [5]));
    await saveCheckpoint('gone', checkpoint(1));
    expect(await checkpointEpoch('gone')).toBe(1);
    await forgetRun('gone');
    expect(await checkpointEpoch('gone')).toBeNull();
    expect(await interruptedRun(PAGE)).toBeNull();
    await saveCheckpoint('gone', checkpoint(2));
    expect(await interruptedRun(PAGE)).toBeNull();
  });

  test('a run whose checkpoint is corrupt is no interrupted run, and is forgotten', async () => {
    keys.push('corrupt');
    await keepRun(run('corrupt', 1, [5]));
    const bytes = checkpoint(1);
    bytes[0] = 0xff; // a header length past the end of the file
    await saveCheckpoint('corrupt', bytes);
    expect(await checkpointEpoch('corrupt')).toBeNull();
    expect(await interruptedRun(PAGE)).toBeNull();
    expect(await loadCheckpointBytes('corrupt')).toBeNull();
  });
});
