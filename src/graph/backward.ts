// One training step planned once: the forward pass with saved activations, the loss, and the
// backward pass through every trainable block, writing parameter gradients into one arena.
// Legend as in forward.ts. Gradients always accumulate into the arena, so gradient accumulation
// over micro-batches is just running several steps before the optimizer; `run` clears the arena
// first when asked.
//
// The residual stream's gradient lives in one buffer (`stream`) that every block updates in
// place: LayerNorm backward and the input-gradient matmuls add into it, so blocks need no copies.
import { submit, type Dispatch } from '../gpu/dispatch';
import { createArena, createTensors, numel, writeTensor, type Tensor } from '../gpu/tensor';
import { attentionBackward } from '../kernels/attention';
import { view } from '../kernels/check';
import { crossEntropy } from '../kernels/crossEntropy';
import { geluBackward } from '../kernels/gelu';
import { layerNormBackward } from '../kernels/layernorm';
import { matmul } from '../kernels/matmul';
import { patchEmbedBackward } from '../kernels/patchEmbed';
import { sumRows } from '../kernels/reduce';
import { embedTokensBackward, poolTokensBackward } from '../kernels/tokens';
import { prefixTokens } from '../models/config';
import { parameterShapes } from '../models/params';
import type { ViT } from '../models/vit';
import { planForward, type BlockActivations, type ForwardPlan } from './forward';

/** What trains: everything, the classifier alone (a linear probe), or the last k blocks with the head. */
export type Trainable = 'all' | 'head' | { lastBlocks: number };

export interface TrainingPlanOptions {
  batch: number;
  trainable?: Trainable;
  /** Label smoothing for hard labels. */
  smoothing?: number;
  /** Targets are rows of class probabilities (mixup, cutmix) instead of labels. */
  softTargets?: boolean;
  /**
   * The step starts at the first trainable block: `run` takes that block's input [B, T, D], what
   * the frozen blocks before it output (computed once, see `ViT.prefix`), instead of images.
   */
  fromFirstTrainable?: boolean;
}

export interface TrainingPlan {
  readonly forward: ForwardPlan;
  /** [B, K] the forward pass's logits (the two heads' average for DeiT-distilled). */
  readonly logits: Tensor;
  /** Names of the trainable parameters, in parameter order. */
  readonly trainable: readonly string[];
  /** Gradient of the mean loss for each trainable parameter. */
  readonly grads: ReadonlyMap<string, Tensor>;
  /** The whole gradient arena as one flat tensor (for the global norm). */
  readonly gradsFlat: Tensor;
  /** Per-example loss [B]; for DeiT-distilled the mean of the two heads' losses. */
  readonly loss: Tensor;
  readonly lossDist?: Tensor;
  readonly dispatches: readonly Dispatch[];
  readonly bytes: number;
  /**
   * Uploads a batch (images, or block inputs with fromFirstTrainable) and submits forward and
   * backward. Labels are class indices [B]; soft targets are [B, K]. `zeroGrads` (default true)
   * clears the gradients first; pass false to accumulate micro-batches into one effective batch.
   */
  run(input: Float32Array, targets: Float32Array, options?: { zeroGrads?: boolean }): void;
  destroy(): void;
}

export function trainableNames(model: ViT, trainable: Trainable): string[] {
  const c = model.config;
  const names = parameterShapes(c).map(([n]) => n);
  if (trainable === 'all') return names;
  const headNames = names.filter((n) => n.startsWith('head'));
  if (trainable === 'head') return headNames;
  const k = trainable.lastBlocks;
  if (!Number.isInteger(k) || k < 0 || k > c.depth) throw new Error(`training: lastBlocks must be an integer in [0, ${c.depth}], got ${k}`);
  const first = c.depth - k;
  return names.filter((n) => {
    const block = /^blocks\.(\d+)\./.exec(n);
    if (block) return Number(block[1]) >= first;
    return n.startsWith('head') || n.startsWith('norm.') || n.startsWith('fc_norm.');
  });
}

/** The first block with trainable parameters (depth when none has). */
export function firstTrainableBlock(model: ViT, trainable: Trainable): number {
  const blocks = trainableNames(model, trainable).flatMap((n) => /^blocks\.(\d+)\./.exec(n)?.[1] ?? []).map(Number);
  return Math.min(model.config.depth, ...blocks);
}

export async function planTraining(model: ViT, opts: TrainingPlanOptions): Promise<TrainingPlan> {
  const { gpu, config: c } = model;
  const B = opts.batch;
  const trainable = trainableNames(model, opts.trainable ?? 'all');
  const trainableSet = new Set(trainable);
  // Gradients stop at the first trainable block: the blocks before it keep no activations.
  const first = firstTrainableBlock(model, opts.trainable ?? 'all');
  const fwd = await planForward(model, { batch: B, training: true, keepFrom: first, fromBlock: opts.fromFirstTrainable ? first : 0 });
  const T = fwd.tokens;
  const { dim: D, mlpDim: M, numClasses: K } = c;
  const nTok = prefixTokens(c);
  const distilled = c.tokens === 'cls+dist';
  const postNorm = c.norm === 'post';

  const arena = createGradArena(model, trainable);
  const { grads } = arena;

  const scratch = createTensors(gpu, `backward B=${B}`, {
    targets: opts.softTargets ? [B, K] : [B],
    loss: [B], lossDist: [B], dlogits: [B, K], dlogitsDist: [B, K], dfeatures: [B, D], dfeaturesDist: [B, D], dpooled: [B, D],
    dnormed: [B, T, D], stream: [B, T, D], stream2: [B, T, D], dD: [B, T, D], dM: [B, T, M], dH: [B, T, M], dqkv: [B, T, 3 * D],
    delta: [B, c.heads, T], dpatches: [B, T - nTok, D],
  });
  const s = scratch.tensors;
  const work: Promise<Dispatch | Dispatch[]>[] = [];
  const p = (name: string) => model.param(name);
  const g = (name: string) => grads.get(name);

  const linearParamGrads = (x: Tensor, dy: Tensor, name: string, width: Width) => work.push(...linearParamGradsOf(model, grads, x, dy, name, width));
  const linearInputGrad = (dy: Tensor, name: string, dx: Tensor, width: Width, accumulate = false) => work.push(linearInputGradOf(model, dy, name, dx, width, accumulate));
  const lnBackward = (x: Tensor, stats: Tensor, dy: Tensor, dx: Tensor, name: string, accumulateDx: boolean) => {
    const dgamma = g(`${name}.weight`);
    const dbeta = g(`${name}.bias`);
    if (!dgamma || !dbeta) throw new Error(`training: ${name} is frozen but gradients flow through it`);
    work.push(layerNormBackward(gpu, { x, gamma: p(`${name}.weight`), stats, dy, dx, dgamma, dbeta, eps: c.eps, accumulate: accumulateDx, accumulateParams: true, label: `${name} backward` }));
  };

  const intoBody = trainable.some((n) => !n.startsWith('head'));
  const heads: (HeadStep & { dfeatures: Tensor; token: number })[] = [
    { name: 'head', logits: distilled ? fwd.logitsCls! : fwd.logits, features: fwd.features, dlogits: s.dlogits!, dfeatures: s.dfeatures!, loss: s.loss!, token: 0 },
  ];
  if (distilled) heads.push({ name: 'head_dist', logits: fwd.logitsDist!, features: fwd.featuresDist!, dlogits: s.dlogitsDist!, dfeatures: s.dfeaturesDist!, loss: s.lossDist!, token: 1 });
  const headTargets = opts.softTargets ? { soft: s.targets! } : { labels: s.targets!, smoothing: opts.smoothing ?? 0 };
  work.push(...planHeadsBackward(model, heads.map((h) => ({ ...h, dfeatures: intoBody ? h.dfeatures : undefined })), headTargets, grads));

  const stream = s.stream!;
  if (intoBody) {
    // From the features back to the last block's output, into `stream`.
    if (c.globalPool === 'avg') {
      let dpooled = s.dfeatures!;
      if (!postNorm) {
        lnBackward(fwd.pooled, fwd.poolStats, s.dfeatures!, s.dpooled!, 'fc_norm', false);
        dpooled = s.dpooled!;
      }
      work.push(poolTokensBackward(gpu, { dout: dpooled, dx: stream, start: nTok, end: T, label: 'pool backward' }));
    } else {
      const dTokens = postNorm ? stream : s.dnormed!;
      heads.forEach((h, i) => work.push(poolTokensBackward(gpu, { dout: h.dfeatures, dx: dTokens, start: h.token, end: h.token + 1, accumulate: i > 0, label: `${h.name} pool backward` })));
      if (!postNorm) lnBackward(fwd.blocks.at(-1)?.out ?? fwd.input, fwd.finalStats, s.dnormed!, stream, 'norm', false);
    }
    for (let l = c.depth - 1; l >= first; l--) {
      const a = fwd.blocks[l - fwd.fromBlock]!;
      if (postNorm) postNormBlockBackward(a, `blocks.${l}`);
      else preNormBlockBackward(a, `blocks.${l}`);
    }
    if (trainableSet.has('pos_embed')) {
      // The embedding trains only with everything, so the step starts at the image and has cols.
      work.push(embedTokensBackward(gpu, {
        dout: stream, dpatches: s.dpatches!, dcls: g('cls_token'), ddist: g('dist_token'), dpos: g('pos_embed')!, accumulate: true, label: 'embed backward',
      }));
      work.push(patchEmbedBackward(gpu, { cols: fwd.cols!, dout: s.dpatches!, dweight: g('patch_embed.proj.weight')!, dbias: g('patch_embed.proj.bias')!, accumulate: true }));
    }
  }

  /** `stream` holds d(block output) on entry and d(block input) on exit. */
  function preNormBlockBackward(a: BlockActivations, name: string): void {
    const w = { D: { in: D, out: D }, fc1: { in: D, out: M }, fc2: { in: M, out: D }, qkv: { in: D, out: 3 * D } };
    // out = xmid + fc2(gelu(fc1(norm2(xmid))))
    linearInputGrad(stream, `${name}.mlp.fc2`, s.dM!, w.fc2);
    linearParamGrads(a.act, stream, `${name}.mlp.fc2`, w.fc2);
    work.push(geluBackward(gpu, { x: a.h, dy: s.dM!, dx: s.dH!, label: `${name} gelu backward` }));
    linearInputGrad(s.dH!, `${name}.mlp.fc1`, s.dD!, w.fc1);
    linearParamGrads(a.ln2, s.dH!, `${name}.mlp.fc1`, w.fc1);
    lnBackward(a.xmid, a.stats2, s.dD!, stream, `${name}.norm2`, true);
    // xmid = x + proj(attention(qkv(norm1(x))))
    linearInputGrad(stream, `${name}.attn.proj`, s.dD!, w.D);
    linearParamGrads(a.attn, stream, `${name}.attn.proj`, w.D);
    work.push(attentionBackward(gpu, { qkv: a.qkv, out: a.attn, lse: a.lse, dout: s.dD!, delta: s.delta!, dqkv: s.dqkv!, heads: c.heads, label: `${name} attention backward` }));
    linearInputGrad(s.dqkv!, `${name}.attn.qkv`, s.dD!, w.qkv);
    linearParamGrads(a.ln1, s.dqkv!, `${name}.attn.qkv`, w.qkv);
    lnBackward(a.x, a.stats1, s.dD!, stream, `${name}.norm1`, true);
  }

  function postNormBlockBackward(a: BlockActivations, name: string): void {
    const w = { D: { in: D, out: D }, fc1: { in: D, out: M }, fc2: { in: M, out: D }, qkv: { in: D, out: 3 * D } };
    const s2 = s.stream2!;
    // out = norm2(xmid + fc2(gelu(fc1(xmid))))
    lnBackward(a.sum2, a.stats2, stream, s2, `${name}.norm2`, false);
    linearInputGrad(s2, `${name}.mlp.fc2`, s.dM!, w.fc2);
    linearParamGrads(a.act, s2, `${name}.mlp.fc2`, w.fc2);
    work.push(geluBackward(gpu, { x: a.h, dy: s.dM!, dx: s.dH!, label: `${name} gelu backward` }));
    linearInputGrad(s.dH!, `${name}.mlp.fc1`, s2, w.fc1, true);
    linearParamGrads(a.xmid, s.dH!, `${name}.mlp.fc1`, w.fc1);
    // xmid = norm1(x + proj(attention(qkv(x))))
    lnBackward(a.sum1, a.stats1, s2, stream, `${name}.norm1`, false);
    linearInputGrad(stream, `${name}.attn.proj`, s.dD!, w.D);
    linearParamGrads(a.attn, stream, `${name}.attn.proj`, w.D);
    work.push(attentionBackward(gpu, { qkv: a.qkv, out: a.attn, lse: a.lse, dout: s.dD!, delta: s.delta!, dqkv: s.dqkv!, heads: c.heads, label: `${name} attention backward` }));
    linearInputGrad(s.dqkv!, `${name}.attn.qkv`, stream, w.qkv, true);
    linearParamGrads(a.x, s.dqkv!, `${name}.attn.qkv`, w.qkv);
  }

  const backward = (await Promise.all(work)).flat();
  const dispatches = [...fwd.dispatches, ...backward];
  const gradsBuffer = arena.gradsFlat.buffer;
  return {
    forward: fwd, logits: fwd.logits, trainable, grads, gradsFlat: arena.gradsFlat, loss: s.loss!, lossDist: distilled ? s.lossDist : undefined, dispatches,
    bytes: fwd.bytes + arena.bytes + scratch.bytes,
    run(input, targets, options = {}) {
      writeTensor(gpu, fwd.input, input);
      writeTensor(gpu, s.targets!, targets);
      const zero = options.zeroGrads ?? true;
      submit(gpu, dispatches, 'training step', zero ? (encoder) => encoder.clearBuffer(gradsBuffer) : undefined);
    },
    destroy() {
      for (const d of backward) d.destroy();
      fwd.destroy();
      for (const b of [gradsBuffer, ...scratch.buffers]) b.destroy();
    },
  };
}

/**
 * The gradients of the trainable parameters in one arena, by parameter name and in parameter order
 * (each dispatch writes views and reads none); AdamW and checkpoints follow the same names.
 */
export function createGradArena(model: ViT, trainable: readonly string[]): { grads: Map<string, Tensor>; gradsFlat: Tensor; bytes: number } {
  const { gpu } = model;
  const names = new Set(trainable);
  const arena = createArena(gpu, 'grads', Object.fromEntries(parameterShapes(model.config).filter(([n]) => names.has(n))));
  if (arena.buffers.length !== 1) throw new Error(`training: gradients (${arena.bytes} bytes) exceed the adapter's maxBufferSize (${gpu.device.limits.maxBufferSize})`);
  const buffer = arena.buffers[0]!;
  return { grads: new Map(Object.entries(arena.tensors)), gradsFlat: { buffer, offset: 0, shape: [buffer.size / 4], label: 'grads' }, bytes: arena.bytes };
}

/** One classifier head in a training step: what it reads, its logits, where its loss and gradients go. */
export interface HeadStep {
  name: 'head' | 'head_dist';
  features: Tensor;   // [B, D]
  logits: Tensor;     // [B, K]
  loss: Tensor;       // [B]
  dlogits: Tensor;    // [B, K]
  /** [B, D] d(features), when gradients flow on into the body. */
  dfeatures?: Tensor;
}

/**
 * Loss and head gradients: each head's cross-entropy (the batch mean; DeiT-distilled averages its
 * two heads' losses), then dW and db accumulated into `grads` where the head trains, and
 * d(features) where asked. Targets are class indices [B] with smoothing, or soft rows [B, K].
 */
export function planHeadsBackward(model: ViT, heads: readonly HeadStep[], targets: { labels: Tensor; smoothing: number } | { soft: Tensor }, grads: ReadonlyMap<string, Tensor>): Promise<Dispatch>[] {
  const { dim: D, numClasses: K } = model.config;
  const gradScale = 1 / (heads.length * heads[0]!.logits.shape[0]!);
  const work: Promise<Dispatch>[] = [];
  for (const h of heads) {
    work.push(crossEntropy(model.gpu, { logits: h.logits, ...targets, loss: h.loss, dlogits: h.dlogits, gradScale, label: `${h.name} loss` }));
    work.push(...linearParamGradsOf(model, grads, h.features, h.dlogits, h.name, { in: D, out: K }));
    if (h.dfeatures) work.push(linearInputGradOf(model, h.dlogits, h.name, h.dfeatures, { in: D, out: K }));
  }
  return work;
}

type Width = { in: number; out: number };

const rows = (t: Tensor, width: number) => view(t, [numel(t.shape) / width, width]);

/** dW += dY^T X and db += column sums of dY for y = x W^T + b, if W is trainable. */
function linearParamGradsOf(model: ViT, grads: ReadonlyMap<string, Tensor>, x: Tensor, dy: Tensor, name: string, width: Width): Promise<Dispatch>[] {
  const dw = grads.get(`${name}.weight`);
  if (!dw) return [];
  const work = [matmul(model.gpu, { a: rows(dy, width.out), b: rows(x, width.in), c: dw, transA: true, accumulate: true, label: `${name} dW` })];
  const db = grads.get(`${name}.bias`);
  if (db) work.push(sumRows(model.gpu, { x: dy, out: db, rows: numel(dy.shape) / width.out, accumulate: true, label: `${name} db` }));
  return work;
}

/** dX (+)= dY W for y = x W^T + b. */
function linearInputGradOf(model: ViT, dy: Tensor, name: string, dx: Tensor, width: Width, accumulate = false): Promise<Dispatch> {
  return matmul(model.gpu, { a: rows(dy, width.out), b: model.param(`${name}.weight`), c: rows(dx, width.in), accumulate, label: `${name} dX` });
}
