// Classifies one image with attention rollout through the engine's worker, and writes what it
// got into the page for the test to read.
import { connectEngine, type ClassifyResult, type UrlModelInfo } from 'vitgpu';

const status = document.getElementById('status')!;
const progress = document.getElementById('progress') as HTMLProgressElement;

const engine = connectEngine(new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' }));

async function run(): Promise<void> {
  const { adapter } = await engine.init();
  status.textContent = `loading the model on ${adapter}`;
  const model: UrlModelInfo = await engine.loadModelFromUrl(new URL('models/deit-tiny/', document.baseURI).href, (p) => {
    if (p.total) progress.value = p.loaded / p.total;
  });
  const image = await (await fetch(new URL('chelsea.png', document.baseURI))).blob();
  const [result]: ClassifyResult[] = await engine.classify([image], { topK: 3, rollout: true });
  const rollout = result!.rollout!;
  document.getElementById('result')!.textContent = JSON.stringify({
    adapter,
    model: model.name,
    cache: model.cache,
    top: result!.top,
    rollout: { length: rollout.length, max: Math.max(...rollout), min: Math.min(...rollout) },
  });
  status.textContent = 'done';
}

run().catch((e: unknown) => {
  status.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
});
