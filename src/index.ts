// Public API of the engine core. DOM-free: everything takes a GPUDevice (wrapped as Gpu) and
// typed arrays, so it runs in a Web Worker, a page, or Node with Dawn.
export { createGpu, wrapDevice, chooseMatmulVariant, type Gpu, type CreateGpuOptions, type MatmulVariant } from './gpu/device';
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
export { embedTokens, embedTokensBackward, poolTokens, poolTokensBackward, add, accumulate } from './kernels/tokens';
export { sumRows, type SumRowsArgs } from './kernels/reduce';
export { patchEmbed, patchEmbedBackward, type PatchEmbedArgs } from './kernels/patchEmbed';
export {
  windowPartition, windowReverse, relativePositionBias, relativePositionBiasBackward, patchMerge, patchMergeBackward,
  swinWindowLayout, windowGrid, type WindowLayout,
} from './kernels/swin';
