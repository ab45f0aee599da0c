// The app's side of the worker: a typed client over any Worker whose module calls serveEngine()
// (worker.ts). Calls go to the worker through comlink; progress callbacks are wrapped for the
// crossing here, so callers pass plain functions, and a model's bytes are transferred, not copied.
import * as Comlink from 'comlink';
import type { EngineApi, LoadProgress, TrainProgress } from './api';

export interface EngineClient extends EngineApi {
  /** Stops the worker; the client is unusable afterwards. */
  terminate(): void;
}

/**
 * The engine in `worker`, a module worker that serves it:
 * `connectEngine(new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' }))`.
 */
export function connectEngine(worker: Worker): EngineClient {
  const remote = Comlink.wrap<EngineApi>(worker);
  const progress = <P extends LoadProgress | TrainProgress>(fn?: (p: P) => void) => (fn ? Comlink.proxy(fn) : undefined);
  return {
    init: () => remote.init(),
    onDeviceLost: (listener) => remote.onDeviceLost(Comlink.proxy(listener)),
    debugLoseDevice: (when) => remote.debugLoseDevice(when),
    loadModelFromUrl: (url, onProgress, options) => remote.loadModelFromUrl(url, progress(onProgress), options),
    // Bytes move to the worker; a File or Blob crosses as a reference to the same data.
    loadModel: (name, weights, config, onProgress, options) => remote.loadModel(name, weights instanceof ArrayBuffer ? Comlink.transfer(weights, [weights]) : weights, config, progress(onProgress), options),
    classify: (images, options) => remote.classify(images, options),
    classifyTensor: (input, batch, imageSize, options) => remote.classifyTensor(input, batch, imageSize, options),
    features: (images, options) => remote.features(images, options),
    featuresTensor: (input, batch, imageSize, options) => remote.featuresTensor(input, batch, imageSize, options),
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
    memory: () => remote.memory(),
    collectGarbage: () => remote.collectGarbage(),
    terminate: () => {
      remote[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}
