// The forward pass of a ViT, planned once for (batch, image size, outputs): every activation lives
// in one arena and every dispatch is created up front, so a run is one writeBuffer, one command
// buffer and the readbacks asked for. Legend: B batch, C channels, S image side, P patch,
// nP patches, nTok prefix tokens, T = nTok + nP, D width, H heads, M MLP width, K classes.
//
// With `training`, each block keeps its own activations (the backward pass reads them) and the MLP
// keeps its pre-activation; otherwise blocks share one set and GELU is fused into fc1. Frozen
// blocks at the start (`keepFrom`) run as in inference, and a plan may start past them altogether
// (`fromBlock`) on the residual stream they computed once.
import type { Gpu } from '../gpu/device';
import { submit, type Dispatch } from '../gpu/dispatch';
import { createTensors, readTensor, writeTensor, type Tensor } from '../gpu/tensor';
import { attention } from '../kernels/attention';
import { view } from '../kernels/check';
import { gelu } from '../kernels/gelu';
import { layerNorm } from '../kernels/layernorm';
import { matmul } from '../kernels/matmul';
import { patchEmbed } from '../kernels/patchEmbed';
import { add, embedTokens, poolTokens } from '../kernels/tokens';
import { prefixTokens } from '../models/config';
import { resizePosEmbed } from '../models/posEmbed';
import type { ViT } from '../models/vit';

export interface ForwardOptions {
  batch: number;
  /** Square input side; defaults to the model's. Other sizes interpolate the position embedding. */
  imageSize?: number;
  /** Keep every layer's attention probabilities [B, H, T, T]. */
  attention?: boolean;
  /** Keep per-block activations for the backward pass. */
  training?: boolean;
  /**
   * With `training`, blocks before this one (frozen: nothing flows back into them) run as in
   * inference and keep nothing. Default 0.
   */
  keepFrom?: number;
  /**
   * Plan blocks [fromBlock, depth) and the head only: `run` uploads block fromBlock's input
   * [B, T, D] (what the frozen blocks before it output, computed once) instead of an image.
   * Default 0, the whole model.
   */
  fromBlock?: number;
}

/** What one encoder block reads and writes; names follow the pre-norm block. */
export interface BlockActivations {
  x: Tensor;       // [B, T, D] block input
  ln1: Tensor;     // [B, T, D] attention input: norm1(x) (pre-norm) or x (post-norm)
  stats1: Tensor;  // [B*T, 2]
  qkv: Tensor;     // [B, T, 3D]
  attn: Tensor;    // [B, T, D]
  lse: Tensor;     // [B, H, T]
  proj: Tensor;    // [B, T, D]
  sum1: Tensor;    // [B, T, D] x + proj
  xmid: Tensor;    // [B, T, D] sum1 (pre-norm) or norm1(sum1) (post-norm)
  ln2: Tensor;     // [B, T, D] MLP input: norm2(xmid) (pre-norm) or xmid (post-norm)
  stats2: Tensor;  // [B*T, 2]
  h: Tensor;       // [B, T, M] fc1 pre-activation (blocks that keep activations; else act)
  act: Tensor;     // [B, T, M] GELU(h)
  mlp: Tensor;     // [B, T, D] fc2 output
  sum2: Tensor;    // [B, T, D] xmid + mlp
  out: Tensor;     // [B, T, D] sum2 (pre-norm) or norm2(sum2) (post-norm): the next block's x
  probs?: Tensor;  // [B, H, T, T]
}

export interface ForwardPlan {
  readonly batch: number;
  readonly imageSize: number;
  readonly tokens: number;
  /** [B, C, S, S] the image, or [B, T, D] block fromBlock's input. */
  readonly input: Tensor;
  readonly cols?: Tensor;       // [B, nP, C*P*P] patchified input (patch-embed backward reads it); not with fromBlock
  readonly embedded?: Tensor;   // [B, T, D] tokens + position embedding; not with fromBlock
  /** The first planned block: `blocks[i]` is block fromBlock + i. */
  readonly fromBlock: number;
  readonly blocks: readonly BlockActivations[];
  readonly normed: Tensor;      // [B, T, D] final norm over all tokens (the last block's out for post-norm)
  readonly finalStats: Tensor;  // [B*T, 2] final norm statistics
  readonly poolStats: Tensor;   // [B, 2] fc_norm statistics (avg pooling)
  readonly pooled: Tensor;      // [B, D] pooled, before fc_norm for avg pooling
  readonly features: Tensor;    // [B, D] what the head reads
  readonly featuresDist?: Tensor;
  readonly logitsCls?: Tensor;
  readonly logitsDist?: Tensor;
  readonly logits: Tensor;      // [B, K]
  readonly dispatches: readonly Dispatch[];
  /** Bytes of GPU memory for activations. */
  readonly bytes: number;
  /** Uploads `input` (B*C*S*S values, NCHW, or B*T*D with fromBlock) and submits the forward pass. */
  run(input: Float32Array): void;
  destroy(): void;
}

export async function planForward(model: ViT, opts: ForwardOptions): Promise<ForwardPlan> {
  const { gpu, config: c } = model;
  const B = opts.batch;
  const S = opts.imageSize ?? c.imageSize;
  if (!Number.isInteger(B) || B <= 0) throw new Error(`forward: batch must be a positive integer, got ${B}`);
  if (!Number.isInteger(S) || S <= 0 || S % c.patchSize !== 0) {
    throw new Error(`forward: image size ${S} is not a positive multiple of the patch size ${c.patchSize}`);
  }
  const P = c.patchSize;
  const grid = S / P;
  const nP = grid * grid;
  const nTok = prefixTokens(c);
  const T = nTok + nP;
  const { dim: D, heads: H, mlpDim: M, numClasses: K } = c;
  const training = opts.training ?? false;
  const fromBlock = opts.fromBlock ?? 0;
  const keepFrom = opts.keepFrom ?? 0;
  for (const [name, v] of [['fromBlock', fromBlock], ['keepFrom', keepFrom]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > c.depth) throw new Error(`forward: ${name} must be an integer in [0, ${c.depth}], got ${v}`);
  }
  const distilled = c.tokens === 'cls+dist';
  const postNorm = c.norm === 'post';

  // Activations. Blocks that keep nothing share one of each, except the residual stream, which
  // alternates between two.
  const spec: Record<string, number[]> = {
    normed: [B, T, D], finalStats: [B * T, 2], pooled: [B, D], features: [B, D], poolStats: [B, 2], logits: [B, K],
  };
  if (fromBlock === 0) Object.assign(spec, { input: [B, c.inChannels, S, S], cols: [B, nP, c.inChannels * P * P], patches: [B, nP, D], embedded: [B, T, D] });
  else spec.input = [B, T, D];
  if (distilled) Object.assign(spec, { featuresDist: [B, D], logitsCls: [B, K], logitsDist: [B, K] });
  if (fromBlock === 0 && S !== c.imageSize) spec.pos = [T, D];
  const keeps = (l: number) => training && l >= keepFrom;
  const perBlock = (name: string, l: number) => (keeps(l) ? `${name}.${l}` : name);
  for (let l = fromBlock; l < c.depth; l++) {
    for (const [name, shape] of [
      ['stats1', [B * T, 2]], ['qkv', [B, T, 3 * D]], ['attn', [B, T, D]], ['lse', [B, H, T]],
      ['proj', [B, T, D]], ['sum1', [B, T, D]], ['stats2', [B * T, 2]], ['act', [B, T, M]],
      ['mlp', [B, T, D]], ['sum2', [B, T, D]],
      ...(keeps(l) ? [['h', [B, T, M]]] : []),
      // Pre-norm normalises the branch inputs; post-norm normalises the residual sums instead.
      ...(postNorm ? [['xmid', [B, T, D]], ['out', [B, T, D]]] : [['ln1', [B, T, D]], ['ln2', [B, T, D]]]),
    ] as [string, number[]][]) spec[perBlock(name, l)] = shape;
    if (opts.attention) spec[`probs.${l}`] = [B, H, T, T];
  }
  const arena = createTensors(gpu, `activations B=${B} S=${S}`, spec);
  const t = arena.tensors;
  const at = (name: string, l: number): Tensor => t[perBlock(name, l)]!;

  const p = (name: string) => model.param(name);
  const work: Promise<Dispatch | Dispatch[]>[] = [];
  if (fromBlock === 0) {
    let pos = model.param('pos_embed');
    if (S !== c.imageSize) {
      const from = c.imageSize / P;
      const resized = resizePosEmbed(await readTensor(gpu, pos), nTok, D, [from, from], [grid, grid]);
      writeTensor(gpu, t.pos!, resized);
      pos = t.pos!;
    }
    work.push(patchEmbed(gpu, { image: t.input!, weight: p('patch_embed.proj.weight'), bias: p('patch_embed.proj.bias'), cols: t.cols!, out: t.patches! }));
    work.push(embedTokens(gpu, {
      patches: t.patches!, pos,
      cls: c.tokens !== 'none' ? p('cls_token') : undefined, dist: distilled ? p('dist_token') : undefined, out: t.embedded!,
    }));
  }

  const blocks: BlockActivations[] = [];
  let x = fromBlock === 0 ? t.embedded! : t.input!;
  for (let l = fromBlock; l < c.depth; l++) {
    const w = (name: string) => p(`blocks.${l}.${name}`);
    const rows = (tensor: Tensor, width: number) => view(tensor, [B * T, width]);
    // A block that keeps nothing may write its output where its input was: the input is last read
    // by the first residual add, long before the output is written.
    const sum1 = at('sum1', l);
    const sum2 = at('sum2', l);
    const xmid = postNorm ? at('xmid', l) : sum1;
    const a: BlockActivations = {
      x, ln1: postNorm ? x : at('ln1', l), stats1: at('stats1', l), qkv: at('qkv', l), attn: at('attn', l), lse: at('lse', l),
      proj: at('proj', l), sum1, xmid, ln2: postNorm ? xmid : at('ln2', l), stats2: at('stats2', l),
      h: keeps(l) ? at('h', l) : at('act', l), act: at('act', l), mlp: at('mlp', l), sum2, out: postNorm ? at('out', l) : sum2,
      probs: opts.attention ? t[`probs.${l}`] : undefined,
    };
    const label = (s: string) => `block ${l} ${s}`;
    if (!postNorm) work.push(layerNorm(gpu, { x: a.x, gamma: w('norm1.weight'), beta: w('norm1.bias'), y: a.ln1, stats: a.stats1, eps: c.eps, label: label('norm1') }));
    work.push(linear(gpu, rows(a.ln1, D), w('attn.qkv.weight'), c.qkvBias ? w('attn.qkv.bias') : undefined, rows(a.qkv, 3 * D), label('qkv')));
    work.push(attention(gpu, { qkv: a.qkv, out: a.attn, lse: a.lse, probs: a.probs, heads: H, label: label('attention') }));
    work.push(linear(gpu, rows(a.attn, D), w('attn.proj.weight'), w('attn.proj.bias'), rows(a.proj, D), label('proj')));
    work.push(add(gpu, { a: a.x, b: a.proj, out: a.sum1, label: label('residual 1') }));
    if (postNorm) work.push(layerNorm(gpu, { x: a.sum1, gamma: w('norm1.weight'), beta: w('norm1.bias'), y: a.xmid, stats: a.stats1, eps: c.eps, label: label('norm1') }));
    else work.push(layerNorm(gpu, { x: a.xmid, gamma: w('norm2.weight'), beta: w('norm2.bias'), y: a.ln2, stats: a.stats2, eps: c.eps, label: label('norm2') }));
    if (keeps(l)) {
      work.push(linear(gpu, rows(a.ln2, D), w('mlp.fc1.weight'), w('mlp.fc1.bias'), rows(a.h, M), label('fc1')));
      work.push(gelu(gpu, { x: a.h, y: a.act, label: label('gelu') }));
    } else {
      work.push(matmul(gpu, { a: rows(a.ln2, D), b: w('mlp.fc1.weight'), bias: w('mlp.fc1.bias'), c: rows(a.act, M), transB: true, epilogue: 'bias_gelu', label: label('fc1+gelu') }));
    }
    work.push(linear(gpu, rows(a.act, M), w('mlp.fc2.weight'), w('mlp.fc2.bias'), rows(a.mlp, D), label('fc2')));
    work.push(add(gpu, { a: a.xmid, b: a.mlp, out: a.sum2, label: label('residual 2') }));
    if (postNorm) work.push(layerNorm(gpu, { x: a.sum2, gamma: w('norm2.weight'), beta: w('norm2.bias'), y: a.out, stats: a.stats2, eps: c.eps, label: label('norm2') }));
    blocks.push(a);
    x = a.out;
  }

  // Head: timm's forward_features (final norm) then forward_head (pool, fc_norm, linear).
  let normed = x;
  const pooledRange = c.globalPool === 'avg' ? [nTok, T] : [0, 1];
  if (c.norm === 'pre' && c.globalPool === 'token') {
    normed = t.normed!;
    work.push(layerNorm(gpu, { x, gamma: p('norm.weight'), beta: p('norm.bias'), y: normed, stats: t.finalStats!, eps: c.eps, label: 'norm' }));
  }
  work.push(poolTokens(gpu, { x: normed, out: t.pooled!, start: pooledRange[0]!, end: pooledRange[1]!, label: 'pool' }));
  let features = t.pooled!;
  if (c.norm === 'pre' && c.globalPool === 'avg') {
    features = t.features!;
    work.push(layerNorm(gpu, { x: t.pooled!, gamma: p('fc_norm.weight'), beta: p('fc_norm.bias'), y: features, stats: t.poolStats!, eps: c.eps, label: 'fc_norm' }));
  }
  if (distilled) work.push(poolTokens(gpu, { x: normed, out: t.featuresDist!, start: 1, end: 2, label: 'pool dist' }));
  work.push(...planHeads(model, { features, featuresDist: t.featuresDist, logitsCls: t.logitsCls, logitsDist: t.logitsDist, logits: t.logits! }));

  const dispatches = (await Promise.all(work)).flat();
  return {
    batch: B, imageSize: S, tokens: T, input: t.input!, cols: t.cols, embedded: t.embedded, fromBlock, blocks, normed,
    finalStats: t.finalStats!, poolStats: t.poolStats!, pooled: t.pooled!, features, featuresDist: t.featuresDist, logitsCls: t.logitsCls,
    logitsDist: t.logitsDist, logits: t.logits!, dispatches, bytes: arena.bytes,
    run(input: Float32Array) {
      writeTensor(gpu, t.input!, input);
      submit(gpu, dispatches, 'forward');
    },
    destroy() {
      for (const d of dispatches) d.destroy();
      for (const b of arena.buffers) b.destroy();
    },
  };
}

/**
 * timm's head: logits [B, K] = features [B, D] W^T + b; DeiT-distilled averages the head on the
 * cls token's features and head_dist on the dist token's (logitsCls and logitsDist keep each).
 */
export function planHeads(model: ViT, t: { features: Tensor; featuresDist?: Tensor; logitsCls?: Tensor; logitsDist?: Tensor; logits: Tensor }): Promise<Dispatch>[] {
  const { gpu } = model;
  const p = (name: string) => model.param(name);
  if (model.config.tokens !== 'cls+dist') return [linear(gpu, t.features, p('head.weight'), p('head.bias'), t.logits, 'head')];
  if (!t.featuresDist || !t.logitsCls || !t.logitsDist) throw new Error('heads: a distilled model needs featuresDist, logitsCls and logitsDist');
  return [
    linear(gpu, t.features, p('head.weight'), p('head.bias'), t.logitsCls, 'head'),
    linear(gpu, t.featuresDist, p('head_dist.weight'), p('head_dist.bias'), t.logitsDist, 'head_dist'),
    add(gpu, { a: t.logitsCls, b: t.logitsDist, out: t.logits, alpha: 0.5, label: 'average heads' }),
  ];
}

/** y [rows, out] = x [rows, in] W^T + b with an nn.Linear weight W [out, in]. */
export function linear(gpu: Gpu, x: Tensor, weight: Tensor, bias: Tensor | undefined, y: Tensor, label: string): Promise<Dispatch> {
  return matmul(gpu, { a: x, b: weight, c: y, bias, transB: true, epilogue: bias ? 'bias' : 'none', label });
}
