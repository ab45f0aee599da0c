// Main-thread side: starts the engine worker and returns its typed comlink proxy.
import * as Comlink from 'comlink';
import type { EngineApi } from './api';

export type EngineClient = Comlink.Remote<EngineApi> & { terminate(): void };

export function startEngineWorker(): EngineClient {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'vit-engine' });
  const remote = Comlink.wrap<EngineApi>(worker);
  return Object.assign(remote, { terminate: () => worker.terminate() }) as EngineClient;
}

/** Wraps a progress callback so it can be passed across the worker boundary. */
export const progressCallback = <T>(fn: (p: T) => void) => Comlink.proxy(fn);
