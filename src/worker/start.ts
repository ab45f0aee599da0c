// The engine worker started from this repository's sources, for the tests and the command-line
// page. The demo, like any app, has a worker file of its own (src/app/engine.worker.ts).
import { connectEngine, type EngineClient } from './client';

export type { EngineClient };

export function startEngineWorker(): EngineClient {
  return connectEngine(new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'vit-engine' }));
}
