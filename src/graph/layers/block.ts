// The transformer block of timm's ViT and Swin, pre-norm or post-norm, around a token mixer
// (global self-attention for ViT, shifted-window attention for Swin) and an Mlp. Legend: B batch,
// T tokens, D width, M MLP width; every tensor below is [B, T, D] unless marked.
//   pre-norm  (timm):        sum1 = x + mix(norm1(x));   out = sum2 = sum1 + mlp(norm2(sum1))
//   post-norm (Transformer): xmid = norm1(x + mix(x));   out = norm2(xmid + mlp(xmid))
// With LayerScale (timm's ls1, ls2: CaiT, DeiT-III, DINOv2) each branch joins the skip path scaled
// per channel, x + gamma1 * mix(...), ... + gamma2 * mlp(...): the residual add becomes a scaled
// add (kernels/layerScale.ts), so the forward pass has the same dispatches with or without it.
// Blocks that keep nothing for a backward pass (inference, frozen blocks) share one set of
// activations per shape; a block's output may then land where its input was, since the input is
// last read by the first residual add, long before the output is written.
//
// Backward: `stream` holds d(out) on entry and d(x) on exit, updated in place: LayerNorm backward
// and the mixer's and MLP's input gradients add into it, so blocks need no copies.
import type { Tensor } from '../../gpu/tensor';
import { scaleAdd, scaleAddBackward } from '../../kernels/layerScale';
import { add } from '../../kernels/tokens';
import type { PlanBuilder } from '../plan';
import { slot } from '../plan';
import { layerNormBackward, layerNormForward } from './layerNorm';
import { mlpBackward, mlpForward, type MlpActivations } from './mlp';

export interface MixerOptions {
  /** Keep activations for a backward pass. */
  keep: boolean;
  /** Keep the attention probabilities (visualisation). */
  probs: boolean;
}

/** A planned token mixer: its attention probabilities when asked for, and its backward pass. */
export interface MixerPlan {
  readonly probs?: Tensor;
  /** Gradients of its parameters, and d(x) into `dx` (added to what it holds with `accumulateDx`). */
  backward(b: PlanBuilder, g: { dout: Tensor; dx: Tensor; accumulateDx: boolean }): void;
}

/** What mixes information between tokens: out [B, T, D] = mix(x [B, T, D]). */
export interface TokenMixer<A extends object = object> {
  forward(b: PlanBuilder, x: Tensor, out: Tensor, options: MixerOptions): A & MixerPlan;
}

export interface BlockOptions extends MixerOptions {
  mixer: TokenMixer;
  norm: 'pre' | 'post';
  /** MLP width. */
  hidden: number;
  eps: number;
  /** LayerScale: gammas at `<name>.ls1.gamma` and `<name>.ls2.gamma` [D]. */
  layerScale?: boolean;
}

export interface BlockActivations {
  x: Tensor;         // block input
  ln1: Tensor;       // mixer input: norm1(x) (pre-norm) or x (post-norm)
  stats1: Tensor;    // [B*T, 2]
  mixer: MixerPlan;  // the mixer's own activations
  mixed: Tensor;     // mixer output
  sum1: Tensor;      // x + mixed
  xmid: Tensor;      // sum1 (pre-norm) or norm1(sum1) (post-norm)
  ln2: Tensor;       // MLP input: norm2(xmid) (pre-norm) or xmid (post-norm)
  stats2: Tensor;    // [B*T, 2]
  mlp: MlpActivations;
  mlpOut: Tensor;    // MLP output
  sum2: Tensor;      // xmid + mlpOut
  out: Tensor;       // sum2 (pre-norm) or norm2(sum2) (post-norm): the next block's x
}

export interface BlockPlan extends BlockActivations {
  readonly probs?: Tensor;
  /** Plans the backward pass from d(out) in `stream`; on return `stream` holds d(x). */
  backward(b: PlanBuilder, stream: Tensor): Tensor;
}

type Shared = Pick<BlockActivations, 'stats1' | 'mixed' | 'sum1' | 'stats2' | 'mlpOut' | 'sum2'> & { normed1: Tensor; normed2: Tensor };
const SCRATCH = slot<Shared>('block activations');
const GRADS = slot<Tensor>('block gradient scratch');
const LS_GRADS = slot<Tensor>('layer scale gradient scratch');

/** Plans one block on x [B, T, D] at `name` (`blocks.3`, `layers.1.blocks.0`). */
export function blockForward(b: PlanBuilder, name: string, x: Tensor, o: BlockOptions): BlockPlan {
  const [B, T, D] = x.shape as [number, number, number];
  const post = o.norm === 'post';
  const make = (tag: string): Shared => {
    const t = (what: string, shape = [B, T, D]) => b.tensor(shape, `${tag} ${what}`);
    // Pre-norm normalises the branch inputs (ln1, ln2); post-norm the residual sums (xmid, out).
    return {
      stats1: t('stats1', [B * T, 2]), mixed: t('mixed'), sum1: t('sum1'), stats2: t('stats2', [B * T, 2]), mlpOut: t('mlp out'), sum2: t('sum2'),
      normed1: t(post ? 'xmid' : 'ln1'), normed2: t(post ? 'out' : 'ln2'),
    };
  };
  const s = o.keep ? make(name) : b.shared(SCRATCH, [B, T, D, o.norm].join(), () => make('block'));
  const ln1 = post ? x : s.normed1;
  const xmid = post ? s.normed1 : s.sum1;
  const ln2 = post ? xmid : s.normed2;
  const out = post ? s.normed2 : s.sum2;
  if (!post) layerNormForward(b, `${name}.norm1`, { x, y: ln1, stats: s.stats1 }, o.eps);
  const mixer = o.mixer.forward(b, ln1, s.mixed, o);
  const residual = (skip: Tensor, branch: Tensor, out: Tensor, i: 1 | 2) => b.add(o.layerScale
    ? scaleAdd(b.gpu, { x: skip, f: branch, gamma: b.param(`${name}.ls${i}.gamma`), out, label: `${name} residual ${i} (layer scale)` })
    : add(b.gpu, { a: skip, b: branch, out, label: `${name} residual ${i}` }));
  residual(x, s.mixed, s.sum1, 1);
  if (post) layerNormForward(b, `${name}.norm1`, { x: s.sum1, y: xmid, stats: s.stats1 }, o.eps);
  else layerNormForward(b, `${name}.norm2`, { x: xmid, y: ln2, stats: s.stats2 }, o.eps);
  const mlp = mlpForward(b, `${name}.mlp`, ln2, s.mlpOut, o.hidden, o.keep);
  residual(xmid, s.mlpOut, s.sum2, 2);
  if (post) layerNormForward(b, `${name}.norm2`, { x: s.sum2, y: out, stats: s.stats2 }, o.eps);

  const a: BlockActivations = { x, ln1, stats1: s.stats1, mixer, mixed: s.mixed, sum1: s.sum1, xmid, ln2, stats2: s.stats2, mlp, mlpOut: s.mlpOut, sum2: s.sum2, out };
  const backward = post ? postNormBackward : preNormBackward;
  return { ...a, probs: mixer.probs, backward: (bb, stream) => backward(bb, name, a, stream, o.eps, o.layerScale ?? false) };
}

function gradScratch(b: PlanBuilder, like: Tensor): Tensor {
  return b.shared(GRADS, like.shape.join(), () => b.tensor(like.shape, 'd block branch'));
}

/**
 * d(branch output) from d(the residual sum) `dsum`: dsum itself, or gamma * dsum in a scratch
 * tensor with LayerScale (dgamma accumulated from the branch output f on the way).
 */
function branchGrad(b: PlanBuilder, name: string, i: 1 | 2, layerScale: boolean, dsum: Tensor, f: Tensor): Tensor {
  if (!layerScale) return dsum;
  const df = b.shared(LS_GRADS, dsum.shape.join(), () => b.tensor(dsum.shape, 'd layer-scaled branch'));
  const gamma = `${name}.ls${i}.gamma`;
  b.add(scaleAddBackward(b.gpu, { dout: dsum, f, gamma: b.param(gamma), df, dgamma: b.grad(gamma), label: `${gamma} backward` }));
  return df;
}

function preNormBackward(b: PlanBuilder, name: string, a: BlockActivations, stream: Tensor, eps: number, ls: boolean): Tensor {
  const dln = gradScratch(b, a.x);
  // out = sum1 + [gamma2 *] mlp(norm2(sum1))
  mlpBackward(b, `${name}.mlp`, { ...a.mlp, x: a.ln2, dout: branchGrad(b, name, 2, ls, stream, a.mlpOut), dx: dln });
  layerNormBackward(b, `${name}.norm2`, { x: a.xmid, stats: a.stats2, dy: dln, dx: stream, accumulateDx: true }, eps);
  // sum1 = x + [gamma1 *] mix(norm1(x))
  a.mixer.backward(b, { dout: branchGrad(b, name, 1, ls, stream, a.mixed), dx: dln, accumulateDx: false });
  layerNormBackward(b, `${name}.norm1`, { x: a.x, stats: a.stats1, dy: dln, dx: stream, accumulateDx: true }, eps);
  return stream;
}

function postNormBackward(b: PlanBuilder, name: string, a: BlockActivations, stream: Tensor, eps: number, ls: boolean): Tensor {
  const dmid = gradScratch(b, a.x);
  // out = norm2(xmid + [gamma2 *] mlp(xmid))
  layerNormBackward(b, `${name}.norm2`, { x: a.sum2, stats: a.stats2, dy: stream, dx: dmid }, eps);
  mlpBackward(b, `${name}.mlp`, { ...a.mlp, x: a.xmid, dout: branchGrad(b, name, 2, ls, dmid, a.mlpOut), dx: dmid, accumulateDx: true });
  // xmid = norm1(x + [gamma1 *] mix(x))
  layerNormBackward(b, `${name}.norm1`, { x: a.sum1, stats: a.stats1, dy: dmid, dx: stream }, eps);
  a.mixer.backward(b, { dout: branchGrad(b, name, 1, ls, stream, a.mixed), dx: stream, accumulateDx: true });
  return stream;
}
