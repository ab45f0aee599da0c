// Every WGSL family, loaded as text by the bundler and reflected once. A family may include a
// shared snippet (gelu_math.wgsl) ahead of its own code; WGSL has no include of its own.
import { shaderFamily } from '../gpu/dispatch';
import attention from '../../shaders/attention.wgsl?raw';
import crossEntropy from '../../shaders/cross_entropy.wgsl?raw';
import gelu from '../../shaders/gelu.wgsl?raw';
import geluMath from '../../shaders/gelu_math.wgsl?raw';
import layernorm from '../../shaders/layernorm.wgsl?raw';
import layerScale from '../../shaders/layerscale.wgsl?raw';
import matmul from '../../shaders/matmul.wgsl?raw';
import optimizer from '../../shaders/optimizer.wgsl?raw';
import patchEmbed from '../../shaders/patch_embed.wgsl?raw';
import reduce from '../../shaders/reduce.wgsl?raw';
import segmentation from '../../shaders/segmentation.wgsl?raw';
import swin from '../../shaders/swin.wgsl?raw';
import tokens from '../../shaders/tokens.wgsl?raw';

export const shaders = {
  attention: shaderFamily('attention', attention),
  crossEntropy: shaderFamily('cross_entropy', crossEntropy),
  gelu: shaderFamily('gelu', `${geluMath}\n${gelu}`),
  layernorm: shaderFamily('layernorm', layernorm),
  layerScale: shaderFamily('layerscale', layerScale),
  matmul: shaderFamily('matmul', `${geluMath}\n${matmul}`),
  optimizer: shaderFamily('optimizer', optimizer),
  patchEmbed: shaderFamily('patch_embed', patchEmbed),
  reduce: shaderFamily('reduce', reduce),
  segmentation: shaderFamily('segmentation', segmentation),
  swin: shaderFamily('swin', swin),
  tokens: shaderFamily('tokens', tokens),
};
