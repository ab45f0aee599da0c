// The parameters of a Swin Transformer by timm name, with their shapes, grouped as the graph
// freezes them: the stem (patch embedding and its norm), each block (stage s > 0's patch merging
// trains with the stage's first block), the final norm, and the classifier `head.fc`.
import { allShapes, groupNames, type GroupedShapes, type ParamShapes } from '../../graph/model';
import { isNormParam } from '../common';
import { swinStages, type SwinConfig } from './config';

const norm = (name: string, dim: number): ParamShapes => [[`${name}.weight`, [dim]], [`${name}.bias`, [dim]]];

function swinShapes(c: SwinConfig): GroupedShapes {
  const stages = swinStages(c);
  const blocks: ParamShapes[] = [];
  stages.forEach((stage, s) => {
    const C = stage.dim;
    const M = Math.round(c.mlpRatio * C);
    for (let j = 0; j < stage.depth; j++) {
      const b = `layers.${s}.blocks.${j}`;
      const merge: ParamShapes = s > 0 && j === 0 ? [...norm(`layers.${s}.downsample.norm`, 2 * C), [`layers.${s}.downsample.reduction.weight`, [C, 2 * C]]] : [];
      blocks.push([
        ...merge,
        ...norm(`${b}.norm1`, C),
        [`${b}.attn.relative_position_bias_table`, [(2 * stage.window - 1) ** 2, stage.heads]],
        [`${b}.attn.qkv.weight`, [3 * C, C]],
        ...(c.qkvBias ? [[`${b}.attn.qkv.bias`, [3 * C]] as [string, number[]]] : []),
        [`${b}.attn.proj.weight`, [C, C]], [`${b}.attn.proj.bias`, [C]],
        ...norm(`${b}.norm2`, C),
        [`${b}.mlp.fc1.weight`, [M, C]], [`${b}.mlp.fc1.bias`, [M]],
        [`${b}.mlp.fc2.weight`, [C, M]], [`${b}.mlp.fc2.bias`, [C]],
      ]);
    }
  });
  const last = stages.at(-1)!.dim;
  return {
    stem: [['patch_embed.proj.weight', [c.embedDim, c.inChannels, c.patchSize, c.patchSize]], ['patch_embed.proj.bias', [c.embedDim]], ...norm('patch_embed.norm', c.embedDim)],
    blocks,
    neck: norm('norm', last),
    classifier: [['head.fc.weight', [c.numClasses, last]], ['head.fc.bias', [c.numClasses]]],
  };
}

export const swinParameterShapes = (c: SwinConfig) => allShapes(swinShapes(c));
export const swinParameterGroups = (c: SwinConfig) => groupNames(swinShapes(c));

/** timm's rule: no decay on 1-D parameters (norms, biases) and on the relative position bias tables. */
export function swinIsNoDecay(name: string): boolean {
  return name.endsWith('.bias') || isNormParam(name) || name.endsWith('relative_position_bias_table');
}
