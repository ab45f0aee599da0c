// Main-thread side: starts the engine worker and returns a typed client. Calls go to the worker
// through comlink; progress callbacks are wrapped for the crossing here, so callers pass plain
// functions.
import * as Comlink from 'comlink';
import type { EngineApi, LoadProgress, TrainProgress } from './api';

export interface EngineClient extends EngineApi {
  /** Stops the worker; the client is unusable afterwards. */
  terminate(): void;
}

export function startEngineWorker(): EngineClient {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'vit-engine' });
  const remote = Comlink.wrap<EngineApi>(worker);
  const progress = <P extends LoadProgress | TrainProgress>(fn?: (p: P) => void) => (fn ? Comlink.proxy(fn) : undefined);
  return {
    init: () => remote.init(),
    loadModelFromUrl: (url, onProgress, options) => remote.loadModelFromUrl(url, progress(onProgress), options),
    loadModel: (name, weights, config, onProgress, options) => remote.loadModel(name, Comlink.transfer(weights, [weights]), config, progress(onProgress), options),
    classify: (images, options) => remote.classify(images, options),
    classifyTensor: (input, batch, imageSize, options) => remote.classifyTensor(input, batch, imageSize, options),
    train: (request, onProgress) => remote.train(request, progress(onProgress)),
    trainSegmentation: (request, onProgress) => remote.trainSegmentation(request, onProgress ? Comlink.proxy(onProgress) : undefined),
    segment: (images) => remote.segment(images),
    exportSegmenter: () => remote.exportSegmenter(),
    stopTraining: () => remote.stopTraining(),
    exportModel: () => remote.exportModel(),
    saveModel: (name) => remote.saveModel(name),
    listSavedModels: () => remote.listSavedModels(),
    exportSavedModel: (key) => remote.exportSavedModel(key),
    loadSavedModel: (key, onProgress) => remote.loadSavedModel(key, progress(onProgress)),
    deleteSavedModel: (key) => remote.deleteSavedModel(key),
    benchmark: (suites, onLine) => remote.benchmark(suites, Comlink.proxy(onLine)),
    terminate: () => {
      remote[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}
