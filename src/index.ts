// The package's browser entry (`vitgpu`). Three layers, each usable alone:
// - the engine in a Web Worker: `connectEngine(worker)` gives a typed client of a worker whose
//   module calls `serveEngine()` (from `vitgpu/worker`); the page never blocks on the GPU;
// - the DOM-free core: `Engine` over a GPUDevice of its own or the app's (`Engine.fromDevice`);
// - the kernels: one WGSL family per function, for apps that build their own graphs.
// Helpers that pages need beside the engine (attention maps on the patch grid, the crop the model
// saw, Fashion-MNIST, checks that run before a file is sent) come from here too.

// The engine through its worker.
export { connectEngine, type EngineClient } from './worker/client';
export type {
  EngineApi, DeviceLostEvent, TestDeviceLoss, ImageInput, TrainRequest, TrainResult, IdxSplit, BenchSuite, CacheReport, ClassifyOptions, ClassifyResult, ModelInfo,
  UrlModelInfo, LoadOptions, LoadProgress, SavedModel, TrainProgress, TrainSettings, Prediction, AttentionResult,
  FeatureMap, FeatureOptions, FeaturesResult, ImageSize, InputSizeOption, GpuMemory,
  NamedImage, SegmentRequest, SegmentResult, MaskResult, SegHeadConfig, SegmenterInfo, SegmentationMetrics, SegmentProgress, SegmentSettings,
} from './worker/api';

// The DOM-free core.
export { Engine, topK, type DeviceOptions } from './engine/engine';
export { GpuError, type GpuErrorKind } from './gpu/errors';
export { MODEL_CACHE, loadModelFolder } from './weights/remote';
export { decodeImage, type DecodeOptions } from './image/decode';
export { preprocess, resizeCropGeometry, type Pixels, type PreprocessConfig } from './image/preprocess';
export { PRESETS, type AnyConfig, type PresetName } from './models/registry';
export { checkCheckpointSize } from './weights/load';
export { blobSource, bytesSource, type ByteSource, type CheckpointInput } from './weights/source';
export { parseJsonText } from './weights/config';
export { attributeLoadError, type ModelFiles } from './weights/attribute';
export { formatBytes, MAX_DECODED_PIXELS, MAX_TOKENS_PER_IMAGE } from './limits';
// Training runs kept beside their checkpoints, to resume after a reload.
export {
  forgetRun, forgetUnlessResumable, interruptedRun, keepRun, MAX_KEPT_IMAGES_BYTES, resumeRequest,
  type InterruptedRun, type KeptImage, type KeptRun,
} from './training/runs';

// Attention maps from ClassifyResult.attention, on the patch grid.
export {
  attentionRollout, clsAttention, patchAttention, fuseHeads,
  type HeadFusion, type RolloutOptions, type MapRect, type LayerShape, type PatchAttention,
} from './engine/attentionMaps';

// Fashion-MNIST and other IDX files (MNIST's format).
export { FASHION_MNIST_CLASSES, fetchFashionMnist, greyToRgba, parseIdx, parseIdxImages, type IdxArray, type IdxImages, type IdxSelection } from './data/idx';

// The kernels, over a GPUDevice wrapped as Gpu, with typed arrays.
export { createGpu, wrapDevice, chooseMatmulVariant, DEFAULT_LIMITS, type Gpu, type CreateGpuOptions, type MatmulVariant } from './gpu/device';
export { createDispatch, submit, Dispatch, type DispatchSpec } from './gpu/dispatch';
export { createTensor, createArena, readTensor, writeTensor, numel, type Tensor } from './gpu/tensor';
export { timeDispatches, benchmark, type Timing } from './gpu/timer';
export { KernelArgumentError, view } from './kernels/check';
export { matmul, type MatmulArgs, type MatmulKernel, type Epilogue } from './kernels/matmul';
export { attention, attentionBackward, MAX_HEAD_DIM, type AttentionArgs, type AttentionBackwardArgs } from './kernels/attention';
export { layerNorm, layerNormBackward, type LayerNormArgs, type LayerNormBackwardArgs } from './kernels/layernorm';
export { gelu, geluBackward } from './kernels/gelu';
export { crossEntropy, type CrossEntropyArgs } from './kernels/crossEntropy';
export { adamw, adamwParams, gradNorm, GRAD_NORM_PARTIALS, type AdamWArgs, type AdamWHyper } from './kernels/optimizer';
export { embedTokens, embedTokensBackward, poolTokens, poolTokensBackward, add, accumulate, copyValues } from './kernels/tokens';
export { sumRows, type SumRowsArgs } from './kernels/reduce';
export { patchEmbed, patchEmbedBackward, type PatchEmbedArgs } from './kernels/patchEmbed';
export {
  windowPartition, windowReverse, relativePositionBias, relativePositionBiasBackward, patchMerge, patchMergeBackward,
  swinWindowLayout, windowGrid, type WindowLayout,
} from './kernels/swin';
