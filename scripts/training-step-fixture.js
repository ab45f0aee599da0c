// node scripts/training-step-fixture.js: writes tests/fixtures/training_step.json, the losses of
// the seeded training steps of tests/helpers/trainingStep.ts, computed in Node on Dawn. The
// browser test and the Dawn test both compare with it, so each checks the other; the first loss
// is also checked against timm's float64 loss. Run it again only when the kernels' arithmetic
// changes on purpose.
import { readFileSync, writeFileSync } from 'node:fs';
import { exitOnUncaught } from './errors.js';
import { loadNodeLibrary } from './node-engine.js';

exitOnUncaught('training-step-fixture');
const { lib, load, close } = await loadNodeLibrary();
try {
  const step = /** @type {typeof import('../tests/helpers/trainingStep')} */ (await load('/tests/helpers/trainingStep.ts'));
  const { parseSafetensors } = /** @type {typeof import('../src/weights/safetensors')} */ (await load('/src/weights/safetensors.ts'));
  const f = step.STEP_FILES;
  const gpu = await lib.createNodeGpu();
  const losses = await step.seededLosses(gpu, {
    weights: readFileSync(f.weights),
    config: JSON.parse(readFileSync(f.config, 'utf8')),
    input: parseSafetensors(readFileSync(f.input)),
    golden: parseSafetensors(readFileSync(f.golden)),
  });
  gpu.device.destroy();
  writeFileSync(f.expected, `${JSON.stringify({ losses, adapter: gpu.name, by: 'scripts/training-step-fixture.js' }, null, 2)}\n`);
  console.error(`wrote ${f.expected}: losses ${losses.join(', ')} (${gpu.name})`);
} finally {
  await close();
}
