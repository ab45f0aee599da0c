// The benchmark page: runs the suites named in ?suite= (default: kernels) and prints each line to
// the page and the console, where scripts/bench.js picks them up.
import { createGpu } from '../gpu/device';
import { runAttentionBench, runKernelBench, runMatmulBench } from './kernels';
import { runModelBench, runSwinBench } from './models';
import { runProfile, runTrainingProfile } from './profile';
import { runSegmentBench } from './segment';
import { runSoakBench } from './soak';
import { runTrainingBench } from './training';

const SUITES: Record<string, typeof runKernelBench> = {
  kernels: runKernelBench, matmul: runMatmulBench, attention: runAttentionBench, models: runModelBench, swin: runSwinBench, training: runTrainingBench, profile: runProfile, 'profile-training': runTrainingProfile, segment: runSegmentBench, soak: runSoakBench,
};

declare global {
  interface Window { benchDone?: boolean; benchError?: string }
}

const out = document.getElementById('log')!;
out.textContent = '';
const log = (line: string): void => {
  out.textContent += `${line}\n`;
  console.log(line);
};

try {
  const gpu = await createGpu();
  const names = (new URLSearchParams(location.search).get('suite') ?? 'kernels').split(',');
  for (const name of names) {
    const suite = SUITES[name];
    if (!suite) throw new Error(`unknown suite "${name}"; known: ${Object.keys(SUITES).join(', ')}`);
    await suite(gpu, log);
  }
} catch (e) {
  window.benchError = e instanceof Error ? e.message : String(e);
  log(`error: ${window.benchError}`);
}
window.benchDone = true;
