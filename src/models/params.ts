// The parameters of a ViT, by timm name, with their shapes: the one list that loading, checking,
// training and export all follow.
import { prefixTokens, type ViTConfig } from './config';

/** Anything with a shape per name: host weights, a parsed checkpoint. */
export type Shapes = ReadonlyMap<string, { shape: readonly number[] }>;

export type ParamShapes = [name: string, shape: number[]][];

export function parameterShapes(c: ViTConfig): ParamShapes {
  const D = c.dim;
  const grid = c.imageSize / c.patchSize;
  const nTok = prefixTokens(c);
  const shapes: ParamShapes = [];
  if (c.tokens !== 'none') shapes.push(['cls_token', [1, 1, D]]);
  if (c.tokens === 'cls+dist') shapes.push(['dist_token', [1, 1, D]]);
  shapes.push(
    ['pos_embed', [1, nTok + grid * grid, D]],
    ['patch_embed.proj.weight', [D, c.inChannels, c.patchSize, c.patchSize]],
    ['patch_embed.proj.bias', [D]],
  );
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    shapes.push(
      [`${b}.norm1.weight`, [D]], [`${b}.norm1.bias`, [D]],
      [`${b}.attn.qkv.weight`, [3 * D, D]],
      ...(c.qkvBias ? [[`${b}.attn.qkv.bias`, [3 * D]] as [string, number[]]] : []),
      [`${b}.attn.proj.weight`, [D, D]], [`${b}.attn.proj.bias`, [D]],
      [`${b}.norm2.weight`, [D]], [`${b}.norm2.bias`, [D]],
      [`${b}.mlp.fc1.weight`, [c.mlpDim, D]], [`${b}.mlp.fc1.bias`, [c.mlpDim]],
      [`${b}.mlp.fc2.weight`, [D, c.mlpDim]], [`${b}.mlp.fc2.bias`, [D]],
    );
  }
  // timm: a final norm over all tokens for pre-norm token pooling; with avg pooling the final norm
  // is an Identity and fc_norm follows the pool. Post-norm blocks end normalised already.
  if (c.norm === 'pre') shapes.push(...finalNorm(c.globalPool === 'avg' ? 'fc_norm' : 'norm', D));
  shapes.push(['head.weight', [c.numClasses, D]], ['head.bias', [c.numClasses]]);
  if (c.tokens === 'cls+dist') shapes.push(['head_dist.weight', [c.numClasses, D]], ['head_dist.bias', [c.numClasses]]);
  return shapes;
}

function finalNorm(name: string, D: number): ParamShapes {
  return [[`${name}.weight`, [D]], [`${name}.bias`, [D]]];
}

/** Tensors exempt from weight decay: norms, biases, position embedding and tokens. */
export function isNoDecay(name: string): boolean {
  return name.endsWith('.bias') || /norm\d?\./.test(name) || name === 'pos_embed' || name.endsWith('_token');
}

/** Every tensor the config needs, with its shape, and nothing else; errors name the tensors. */
export function checkWeights(config: ViTConfig, weights: Shapes): void {
  const shapes = parameterShapes(config);
  const problems: string[] = [];
  for (const [name, shape] of shapes) {
    const w = weights.get(name);
    if (!w) problems.push(`missing ${name} [${shape.join(', ')}]`);
    else if (w.shape.join() !== shape.join()) problems.push(`${name} has shape [${w.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
  }
  const known = new Set(shapes.map(([n]) => n));
  const extra = [...weights.keys()].filter((n) => !known.has(n));
  if (extra.length) problems.push(`tensors the config has no place for: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`);
  if (problems.length) throw new Error(`weights do not match the config: ${problems.slice(0, 6).join('; ')}${problems.length > 6 ? '; …' : ''}`);
}
