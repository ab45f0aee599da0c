// A kept run's request for resuming: its own images when they were kept, else the same images
// added again, matched by class, name and size and sent in the run's order.
import { describe, expect, test } from 'vitest';
import { resumeRequest, type KeptRun } from '../src/training/runs';

const blob = (bytes: number, fill: number) => new Blob([new Uint8Array(bytes).fill(fill)]);

/** A run of two classes: a.png (3 bytes) and b.png (5 bytes) in "cats", c.png (7 bytes) in "dogs". */
function run(imagesKept: boolean): KeptRun {
  const image = (name: string, size: number) => ({ name, size, ...(imagesKept && { blob: blob(size, size) }) });
  return {
    key: 'finetune-1', page: 'finetune', baseName: 'DeiT-tiny', startedAt: 1, imagesKept,
    request: {
      model: 'current', checkpointKey: 'finetune-1', settings: { epochs: 3 },
      dataset: { kind: 'images', classes: [{ name: 'cats', images: [image('a.png', 3), image('b.png', 5)] }, { name: 'dogs', images: [image('c.png', 7)] }] },
    },
  };
}

const sizes = (req: ReturnType<typeof resumeRequest>) => (req.dataset.kind === 'images' ? req.dataset.classes.map((c) => [c.name, (c.images as Blob[]).map((b) => b.size)]) : []);

describe('resumeRequest', () => {
  test('a run with its images kept resumes with them, under its checkpoint key', () => {
    const req = resumeRequest(run(true));
    expect(req.resume).toBe(true);
    expect(req.checkpointKey).toBe('finetune-1');
    expect(req.settings).toEqual({ epochs: 3 });
    expect(sizes(req)).toEqual([['cats', [3, 5]], ['dogs', [7]]]);
  });

  test('images added again in another order are sent in the run\'s order', () => {
    const b = blob(5, 1);
    const a = blob(3, 2);
    const req = resumeRequest(run(false), [{ name: 'dogs', images: [{ name: 'c.png', blob: blob(7, 0) }] }, { name: 'cats', images: [{ name: 'b.png', blob: b }, { name: 'a.png', blob: a }] }]);
    expect(sizes(req)).toEqual([['cats', [3, 5]], ['dogs', [7]]]);
    expect(req.dataset.kind === 'images' && req.dataset.classes[0]!.images).toEqual([a, b]);
  });

  test('a missing image, one of another size, one too many, a missing or an extra class are refused by name', () => {
    const cats = (...images: [string, number][]) => ({ name: 'cats', images: images.map(([name, size]) => ({ name, blob: blob(size, 0) })) });
    const dogs = { name: 'dogs', images: [{ name: 'c.png', blob: blob(7, 0) }] };
    expect(() => resumeRequest(run(false))).toThrow('the run needs its class "cats" again');
    expect(() => resumeRequest(run(false), [cats(['a.png', 3]), dogs])).toThrow('class "cats" needs b.png (5 bytes) again');
    expect(() => resumeRequest(run(false), [cats(['a.png', 3], ['b.png', 6]), dogs])).toThrow('class "cats" needs b.png (5 bytes) again');
    expect(() => resumeRequest(run(false), [cats(['a.png', 3], ['b.png', 5], ['d.png', 1]), dogs])).toThrow('class "cats": d.png was not in the run');
    expect(() => resumeRequest(run(false), [cats(['a.png', 3], ['b.png', 5])])).toThrow('the run needs its class "dogs" again');
    expect(() => resumeRequest(run(false), [cats(['a.png', 3], ['b.png', 5]), dogs, { name: 'birds', images: [{ name: 'e.png', blob: blob(1, 0) }] }])).toThrow('class "birds" was not in the run');
  });

  test('a run on the bundled Fashion-MNIST resumes as it was asked', () => {
    const scratch: KeptRun = {
      key: 'scratch-2', page: 'scratch', baseName: 'the small ViT', startedAt: 2, imagesKept: true,
      request: { model: 'fashion-mnist', checkpointKey: 'scratch-2', dataset: { kind: 'fashion-mnist', train: 256, holdout: 100 }, settings: { epochs: 2, accumulate: 2 } },
    };
    expect(resumeRequest(scratch)).toEqual({ ...scratch.request, resume: true });
  });
});
