// DeiT-tiny in Node on Dawn, through the library's Node entry, against the float64 golden file:
// the same bounds as the browser's golden test (the F16 weights' rounding, F16_WEIGHTS_TOL).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, loadModelFromPath, readImage, type Engine } from '../src/node';
import { relL2 } from './helpers/compare';
import { DEIT_TINY_DIR, GOLDEN_PATH, readSafetensors, SAMPLES_DIR } from './helpers/files';
import { F16_WEIGHTS_TOL } from './tolerances';

describe('DeiT-tiny on Dawn against the golden file (chelsea.png, coffee.png)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createEngine();
    console.log(`adapter: ${engine.adapter}`);
    await loadModelFromPath(engine, DEIT_TINY_DIR);
  });
  afterAll(() => engine?.destroy());

  test('chelsea.png and coffee.png, read and preprocessed in Node: logits within the bound of the F16 weights, identical top-5', async () => {
    // The PNGs decode to the golden input itself (tests/nodeImage.node.test.ts), so this checks
    // the whole Node path, file to classes, against the golden logits.
    const golden = readSafetensors(GOLDEN_PATH);
    const images = await Promise.all(['chelsea.png', 'coffee.png'].map((f) => readImage(`${SAMPLES_DIR}/${f}`)));
    const results = await engine.classifyImages(images, { logits: true, topK: 5, features: true });
    const ref = golden.get('logits');
    const refFeatures = golden.get('features');
    results.forEach((r, b) => {
      const err = relL2(r.logits!, ref.subarray(b * 1000, (b + 1) * 1000));
      const featuresErr = relL2(r.features!, refFeatures.subarray(b * 192, (b + 1) * 192));
      console.log(`image ${b}: logits relative L2 error ${err.toExponential(2)}, features ${featuresErr.toExponential(2)}`);
      expect(err).toBeLessThan(F16_WEIGHTS_TOL.logitsRelL2);
      expect(featuresErr).toBeLessThan(F16_WEIGHTS_TOL.featuresRelL2);
      const refTop = Array.from(ref.subarray(b * 1000, (b + 1) * 1000), (v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]).slice(0, 5).map(([, i]) => i);
      expect(r.top.map((p) => p.index)).toEqual(refTop);
    });
    expect(results[0]!.top.slice(0, 3).map((p) => p.label)).toEqual(['Egyptian Mau', 'tabby cat', 'tiger cat']);
    expect(results[1]!.top[0]!.label).toBe('espresso');
  });
});
