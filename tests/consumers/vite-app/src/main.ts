// Classifies one image with attention rollout through the engine's worker and writes what it got
// into the page for the test to read. The lines from connectEngine to classify are the README's.
import { connectEngine, type ClassifyResult, type UrlModelInfo } from 'vitgpu';

const status = document.getElementById('status')!;
const progress = document.getElementById('progress') as HTMLProgressElement;
addEventListener('unhandledrejection', (e) => {
  status.textContent = `error: ${e.reason instanceof Error ? e.reason.message : String(e.reason)}`;
});

const engine = connectEngine(new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' }));

const { adapter } = await engine.init();
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
