// The float64 reference ViT: the same function as the GPU forward (src/graph/forward.ts), written
// as a chain of the reference ops, and its backward by hand, op by op in reverse. Parameters are
// looked up by timm name (the ViT family's parameter list, src/models/vit/family.ts). Legend: B batch, C channels, S image side,
// P patch, nP patches, nTok prefix tokens (class, distillation, R registers), T = nTok + nP,
// D width, H heads, M MLP width, K classes. timm's options, as its VisionTransformer computes them:
// LayerScale (x + gamma * f(x) in both branches), no_embed_class (the position embedding covers
// the patches; prefix tokens are prepended after it is added), register tokens after the class
// token, and the final norm over the tokens (`norm`), after the pool (`fc_norm`) or none.
import { posEmbedPrefix, prefixTokens, type ViTConfig } from '../../src/models/vit/config';
import { vit } from '../../src/models/vit/family';
import { resizePosEmbed } from '../../src/models/vit/posEmbed';
import {
  attentionBackwardRef, attentionRef, crossEntropyRef, embedTokensBackwardRef, embedTokensRef, geluBackwardRef, geluRef,
  layerNormBackwardRef, layerNormRef, matmulBackwardRef, matmulRef, meanPoolBackwardRef, meanPoolRef,
  patchEmbedBackwardRef, patchEmbedRef, type AttentionShape, type CETarget,
} from './ops';

export type Params = Map<string, ArrayLike<number>>;

export interface RefForward {
  /** (B, K); the average of both heads when distilled. */
  logits: Float64Array;
  /** (B, D) what `head` reads. */
  features: Float64Array;
  /** Per layer (B, H, T, T). */
  probs: Float64Array[];
  /** (B, T, D) tokens after the final norm, or the last block's output if there is none. */
  normed: Float64Array;
  /** Distilled only: (B, K) each head's logits and (B, D) what `head_dist` reads. */
  logitsCls?: Float64Array;
  logitsDist?: Float64Array;
  featuresDist?: Float64Array;
}

// ---- linear layers: y (rows, out) = x (rows, in) W^T + b, W (out, in) as in nn.Linear ----

function linearRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | undefined, rows: number, nIn: number, nOut: number): Float64Array {
  const y = matmulRef(x, w, { batch: 1, M: rows, N: nOut, K: nIn, transB: true });
  if (b) for (let r = 0; r < rows; r++) for (let o = 0; o < nOut; o++) y[r * nOut + o] = y[r * nOut + o]! + b[o]!;
  return y;
}

function linearBackwardRef(
  x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, rows: number, nIn: number, nOut: number,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { da: dx, db: dw } = matmulBackwardRef(x, w, dy, { batch: 1, M: rows, N: nOut, K: nIn, transB: true });
  const db = new Float64Array(nOut);
  for (let r = 0; r < rows; r++) for (let o = 0; o < nOut; o++) db[o] = db[o]! + dy[r * nOut + o]!;
  return { dx, dw, db };
}

const addRef = (a: ArrayLike<number>, b: ArrayLike<number>, alpha = 1): Float64Array => Float64Array.from(a, (v, i) => alpha * (v + b[i]!));

function addInto(acc: Float64Array, b: ArrayLike<number>): Float64Array {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + b[i]!;
  return acc;
}

/** x (B, T, D) -> (B, D): token t of every image. */
function takeToken(x: ArrayLike<number>, B: number, T: number, D: number, t: number): Float64Array {
  const out = new Float64Array(B * D);
  for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) out[b * D + d] = x[(b * T + t) * D + d]!;
  return out;
}

/** dx (B, T, D) += dy (B, D) at token t. */
function takeTokenBackward(dx: Float64Array, dy: ArrayLike<number>, B: number, T: number, D: number, t: number): void {
  for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) dx[(b * T + t) * D + d] = dx[(b * T + t) * D + d]! + dy[b * D + d]!;
}

// ---- shapes and parameters ----

/** Image height and width (Ht, Wd), the patch grid (gh, gw); S is the side of a square image (else NaN). */
interface Dims { B: number; S: number; Ht: number; Wd: number; P: number; C: number; gh: number; gw: number; nP: number; nTok: number; nPos: number; T: number; D: number; H: number; M: number; K: number; rows: number }

/** An image side, or [height, width]. */
export type ImageSize = number | [number, number];

function dims(c: ViTConfig, B: number, size: ImageSize): Dims {
  const [Ht, Wd] = typeof size === 'number' ? [size, size] : size;
  for (const side of [Ht, Wd]) if (side % c.patchSize !== 0) throw new Error(`reference: image size ${side} is not a multiple of the patch size ${c.patchSize}`);
  const S = Ht === Wd ? Ht : Number.NaN;
  const gh = Ht / c.patchSize;
  const gw = Wd / c.patchSize;
  const nP = gh * gw;
  const nTok = prefixTokens(c);
  const T = nTok + nP;
  return { B, S, Ht, Wd, P: c.patchSize, C: c.inChannels, gh, gw, nP, nTok, nPos: posEmbedPrefix(c), T, D: c.dim, H: c.heads, M: c.mlpDim, K: c.numClasses, rows: B * T };
}

/** Every tensor vit.parameterShapes(c) names must be present with the right number of elements. */
function checkParams(c: ViTConfig, params: Params): void {
  for (const [name, shape] of vit.parameterShapes(c)) {
    const t = params.get(name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!t) throw new Error(`reference: missing parameter ${name}`);
    if (t.length !== n) throw new Error(`reference: ${name} has ${t.length} values, expected ${n} (shape ${shape.join('x')})`);
  }
}

const getter = (params: Params) => (name: string): ArrayLike<number> => {
  const t = params.get(name);
  if (!t) throw new Error(`reference: missing parameter ${name}`);
  return t;
};

// ---- encoder block ----

/** What one block computed; names follow src/graph/forward.ts BlockActivations. */
interface BlockActs {
  x: Float64Array;     // (B, T, D) block input
  ln1: Float64Array;   // attention input: norm1(x) (pre-norm) or x (post-norm)
  qkv: Float64Array;   // (B, T, 3D)
  attn: Float64Array;  // (B, T, D)
  probs: Float64Array; // (B, H, T, T)
  proj: Float64Array;  // (B, T, D) attention branch output
  sum1: Float64Array;  // x + [ls1 *] proj
  xmid: Float64Array;  // sum1 (pre-norm) or norm1(sum1) (post-norm)
  ln2: Float64Array;   // MLP input: norm2(xmid) (pre-norm) or xmid (post-norm)
  h: Float64Array;     // (B, T, M) fc1 pre-activation
  act: Float64Array;   // gelu(h)
  mlp: Float64Array;   // fc2(act), the MLP branch output
  sum2: Float64Array;  // xmid + [ls2 *] mlp
  out: Float64Array;   // sum2 (pre-norm) or norm2(sum2) (post-norm)
}

function attnShape(n: Dims): AttentionShape {
  const hd = n.D / n.H;
  return { B: n.B, T: n.T, H: n.H, hd, scale: hd ** -0.5 };
}

/** x + gamma * f with gamma (D) per channel: LayerScale's residual. */
function scaledAddRef(x: ArrayLike<number>, f: ArrayLike<number>, gamma: ArrayLike<number>, D: number): Float64Array {
  return Float64Array.from(x, (v, i) => v + gamma[i % D]! * f[i]!);
}

function blockForward(c: ViTConfig, p: (name: string) => ArrayLike<number>, n: Dims, x: Float64Array): BlockActs {
  const { D, M, rows } = n;
  const post = c.norm === 'post';
  const residual = (skip: ArrayLike<number>, f: ArrayLike<number>, i: number) => (c.layerScale !== undefined ? scaledAddRef(skip, f, p(`ls${i}.gamma`), D) : addRef(skip, f));
  const norm = (v: ArrayLike<number>, which: string) => layerNormRef(v, p(`${which}.weight`), p(`${which}.bias`), rows, D, c.eps).y;
  const ln1 = post ? x : norm(x, 'norm1');
  const qkv = linearRef(ln1, p('attn.qkv.weight'), c.qkvBias ? p('attn.qkv.bias') : undefined, rows, D, 3 * D);
  const { out: attn, probs } = attentionRef(qkv, attnShape(n));
  const proj = linearRef(attn, p('attn.proj.weight'), p('attn.proj.bias'), rows, D, D);
  const sum1 = residual(x, proj, 1);
  const xmid = post ? norm(sum1, 'norm1') : sum1;
  const ln2 = post ? xmid : norm(xmid, 'norm2');
  const h = linearRef(ln2, p('mlp.fc1.weight'), p('mlp.fc1.bias'), rows, D, M);
  const act = geluRef(h);
  const mlp = linearRef(act, p('mlp.fc2.weight'), p('mlp.fc2.bias'), rows, M, D);
  const sum2 = residual(xmid, mlp, 2);
  const out = post ? norm(sum2, 'norm2') : sum2;
  return { x, ln1, qkv, attn, probs, proj, sum1, xmid, ln2, h, act, mlp, sum2, out };
}

/** dout (B, T, D) -> dx (B, T, D); parameter gradients go to grad(name, value) under their in-block names. */
function blockBackward(
  c: ViTConfig, p: (name: string) => ArrayLike<number>, n: Dims, a: BlockActs, dout: Float64Array,
  grad: (name: string, g: Float64Array) => void,
): Float64Array {
  const { D, M, rows } = n;
  const post = c.norm === 'post';
  const normBack = (v: ArrayLike<number>, which: string, dy: ArrayLike<number>): Float64Array => {
    const r = layerNormBackwardRef(v, p(`${which}.weight`), dy, rows, D, c.eps);
    grad(`${which}.weight`, r.dgamma);
    grad(`${which}.bias`, r.dbeta);
    return r.dx;
  };
  const linBack = (x: ArrayLike<number>, name: string, dy: ArrayLike<number>, nIn: number, nOut: number, bias: boolean): Float64Array => {
    const r = linearBackwardRef(x, p(`${name}.weight`), dy, rows, nIn, nOut);
    grad(`${name}.weight`, r.dw);
    if (bias) grad(`${name}.bias`, r.db);
    return r.dx;
  };

  // d(branch) of sum = skip + gamma * f: gamma * dsum, and dgamma = column sums of dsum * f.
  const branchBack = (dsum: Float64Array, f: Float64Array, i: number): Float64Array => {
    if (c.layerScale === undefined) return dsum;
    const gamma = p(`ls${i}.gamma`);
    const dgamma = new Float64Array(D);
    for (let j = 0; j < dsum.length; j++) dgamma[j % D] = dgamma[j % D]! + dsum[j]! * f[j]!;
    grad(`ls${i}.gamma`, dgamma);
    return Float64Array.from(dsum, (v, j) => v * gamma[j % D]!);
  };

  // MLP half: sum2 = xmid + [ls2 *] fc2(gelu(fc1(ln2))).
  const dsum2 = post ? normBack(a.sum2, 'norm2', dout) : dout;
  const dact = linBack(a.act, 'mlp.fc2', branchBack(dsum2, a.mlp, 2), M, D, true);
  const dh = geluBackwardRef(a.h, dact);
  const dln2 = linBack(a.ln2, 'mlp.fc1', dh, D, M, true);
  const dxmid = addInto(Float64Array.from(dsum2), post ? dln2 : normBack(a.xmid, 'norm2', dln2));

  // Attention half: sum1 = x + [ls1 *] proj(attention(qkv(ln1))).
  const dsum1 = post ? normBack(a.sum1, 'norm1', dxmid) : dxmid;
  const dattn = linBack(a.attn, 'attn.proj', branchBack(dsum1, a.proj, 1), D, D, true);
  const dqkv = attentionBackwardRef(a.qkv, dattn, attnShape(n));
  const dln1 = linBack(a.ln1, 'attn.qkv', dqkv, D, 3 * D, c.qkvBias);
  return addInto(Float64Array.from(dsum1), post ? dln1 : normBack(a.x, 'norm1', dln1));
}

// ---- the whole model ----

interface Acts extends RefForward {
  n: Dims;
  input: ArrayLike<number>;
  blocks: BlockActs[];
  /** (B, D) pooled tokens, before fc_norm. */
  pooled: Float64Array;
}

/**
 * The position embedding (T, D) for the image: resized bicubically when its size is not the
 * training size (antialiased, as timm's resample_abs_pos_embed, with `antialias`).
 */
function posEmbedFor(c: ViTConfig, pos: ArrayLike<number>, n: Dims, antialias: boolean): ArrayLike<number> {
  if (n.S === c.imageSize) return pos;
  const from = c.imageSize / c.patchSize;
  const f32 = pos instanceof Float32Array ? pos : Float32Array.from(pos);
  return resizePosEmbed(f32, n.nPos, n.D, [from, from], [n.gh, n.gw], { antialias });
}

/** Which final norm the model has (timm): over the tokens, after the pool, or none. */
function finalNormOf(c: ViTConfig): 'norm' | 'fc_norm' | null {
  if (c.norm === 'post' || c.finalNorm === false) return null;
  return (c.fcNorm ?? c.globalPool === 'avg') ? 'fc_norm' : 'norm';
}

function forwardActs(c: ViTConfig, params: Params, input: ArrayLike<number>, B: number, size: ImageSize, antialias = true): Acts {
  checkParams(c, params);
  const n = dims(c, B, size);
  const { C, P, nP, nTok, T, D, K, Ht, Wd } = n;
  if (input.length !== B * C * Ht * Wd) throw new Error(`reference: input has ${input.length} values, expected ${B}x${C}x${Ht}x${Wd}`);
  const p = getter(params);
  const distilled = c.tokens === 'cls+dist';

  // Embedding: conv patches, prefix tokens, position embedding.
  // Prefix tokens in timm's order: class, distillation, registers. With no_embed_class the
  // position embedding starts at the patches: the prefix rows of the full (T, D) one are zero.
  const patches = patchEmbedRef(input, p('patch_embed.proj.weight'), p('patch_embed.proj.bias'), B, C, Ht, Wd, P, D);
  const tokens = new Float64Array(nTok * D);
  const R = c.regTokens ?? 0;
  if (c.tokens !== 'none') tokens.set(p('cls_token'));
  if (distilled) tokens.set(p('dist_token'), D);
  if (R) tokens.set(p('reg_token'), (nTok - R) * D);
  const pos = new Float64Array(T * D);
  pos.set(posEmbedFor(c, p('pos_embed'), n, antialias), (nTok - n.nPos) * D);
  let x = embedTokensRef(patches, tokens, pos, B, nP, nTok, D);

  const blocks: BlockActs[] = [];
  for (let l = 0; l < c.depth; l++) {
    const a = blockForward(c, (name) => p(`blocks.${l}.${name}`), n, x);
    blocks.push(a);
    x = a.out;
  }

  // Head: final norm over the tokens, pool (the class token, or the mean of the patches), fc_norm, linear.
  const final = finalNormOf(c);
  const normed = final === 'norm' ? layerNormRef(x, p('norm.weight'), p('norm.bias'), B * T, D, c.eps).y : x;
  const pooled = c.globalPool === 'avg' ? meanPoolRef(normed, B, T, D, nTok) : takeToken(normed, B, T, D, 0);
  const features = final === 'fc_norm' ? layerNormRef(pooled, p('fc_norm.weight'), p('fc_norm.bias'), B, D, c.eps).y : pooled;
  // A backbone (numClasses 0) has no head.
  const logitsCls = K > 0 ? linearRef(features, p('head.weight'), p('head.bias'), B, D, K) : new Float64Array(0);
  const probs = blocks.map((a) => a.probs);
  const common = { n, input, blocks, pooled, features, probs, normed };
  if (!distilled) return { ...common, logits: logitsCls };
  const featuresDist = takeToken(normed, B, T, D, 1);
  const logitsDist = linearRef(featuresDist, p('head_dist.weight'), p('head_dist.bias'), B, D, K);
  return { ...common, logits: addRef(logitsCls, logitsDist, 0.5), logitsCls, logitsDist, featuresDist };
}

/**
 * Inference forward of `input` (B, C, H, W) NCHW, imageSize a side or [H, W] (default
 * config.imageSize); the position embedding is resampled as timm does for another size
 * (antialiased bicubic; `antialias: false`: plain bicubic, F.interpolate's default).
 */
export function vitForwardRef(c: ViTConfig, params: Params, input: ArrayLike<number>, B: number, imageSize?: ImageSize, options: { antialias?: boolean } = {}): RefForward {
  const { logits, features, probs, normed, logitsCls, logitsDist, featuresDist } = forwardActs(c, params, input, B, imageSize ?? c.imageSize, options.antialias);
  return { logits, features, probs, normed, ...(logitsCls ? { logitsCls, logitsDist, featuresDist } : {}) };
}

/**
 * Mean cross-entropy over the batch and its gradient with respect to every parameter (by timm
 * name, flat in parameterShapes order). Distilled models train both heads on the same target:
 * loss = (CE(head) + CE(head_dist)) / 2.
 */
export function vitLossAndGradsRef(
  c: ViTConfig, params: Params, input: ArrayLike<number>, B: number, target: CETarget,
  /** Instead of the classifier: a loss of the final norm's tokens (B, T, D) and its gradient (a dense head). */
  tokenLoss?: (normed: Float64Array) => { loss: number; dnormed: Float64Array },
): { loss: number; grads: Map<string, Float64Array> } {
  const acts = forwardActs(c, params, input, B, c.imageSize);
  const { n } = acts;
  const { C, P, nP, nTok, T, D, K } = n;
  const p = getter(params);
  const grads = new Map<string, Float64Array>(vit.parameterShapes(c).map(([name, shape]) => [name, new Float64Array(shape.reduce((a, b) => a * b, 1))]));
  const grad = (name: string, g: ArrayLike<number>): void => {
    const acc = grads.get(name);
    if (!acc) throw new Error(`reference: gradient for unknown parameter ${name}`);
    addInto(acc, g);
  };
  const mean = (v: Float64Array): number => v.reduce((s, x) => s + x, 0) / v.length;

  if (tokenLoss) {
    const r = tokenLoss(acts.normed);
    return { loss: r.loss, grads: backboneBackward(r.dnormed) };
  }
  // Loss and dlogits of each head.
  const distilled = c.tokens === 'cls+dist';
  let loss: number;
  let dlogitsCls: Float64Array;
  let dlogitsDist: Float64Array | undefined;
  if (distilled) {
    const cls = crossEntropyRef(acts.logitsCls!, B, K, target);
    const dist = crossEntropyRef(acts.logitsDist!, B, K, target);
    loss = 0.5 * (mean(cls.loss) + mean(dist.loss));
    dlogitsCls = cls.dlogits.map((v) => 0.5 * v);
    dlogitsDist = dist.dlogits.map((v) => 0.5 * v);
  } else {
    const ce = crossEntropyRef(acts.logits, B, K, target);
    loss = mean(ce.loss);
    dlogitsCls = ce.dlogits;
  }

  // Head backward, to d(normed) then d(last block output).
  const head = linearBackwardRef(acts.features, p('head.weight'), dlogitsCls, B, D, K);
  grad('head.weight', head.dw);
  grad('head.bias', head.db);
  let dpooled = head.dx;
  const final = finalNormOf(c);
  if (final === 'fc_norm') {
    const r = layerNormBackwardRef(acts.pooled, p('fc_norm.weight'), dpooled, B, D, c.eps);
    grad('fc_norm.weight', r.dgamma);
    grad('fc_norm.bias', r.dbeta);
    dpooled = r.dx;
  }
  let dnormed: Float64Array;
  if (c.globalPool === 'avg') dnormed = meanPoolBackwardRef(dpooled, B, T, D, nTok);
  else {
    dnormed = new Float64Array(B * T * D);
    takeTokenBackward(dnormed, dpooled, B, T, D, 0);
  }
  if (dlogitsDist) {
    const r = linearBackwardRef(acts.featuresDist!, p('head_dist.weight'), dlogitsDist, B, D, K);
    grad('head_dist.weight', r.dw);
    grad('head_dist.bias', r.db);
    takeTokenBackward(dnormed, r.dx, B, T, D, 1);
  }
  return { loss, grads: backboneBackward(dnormed) };

  /** Every backbone gradient from d(the final norm's tokens). */
  function backboneBackward(dnormed: Float64Array): Map<string, Float64Array> {
    let dx = dnormed;
    if (finalNormOf(c) === 'norm') {
      const last = acts.blocks[acts.blocks.length - 1]?.out;
      if (!last) throw new Error('reference: a model needs at least one block');
      const r = layerNormBackwardRef(last, p('norm.weight'), dnormed, B * T, D, c.eps);
      grad('norm.weight', r.dgamma);
      grad('norm.bias', r.dbeta);
      dx = r.dx;
    }

    // Blocks in reverse.
    for (let l = c.depth - 1; l >= 0; l--) {
      dx = blockBackward(c, (name) => p(`blocks.${l}.${name}`), n, acts.blocks[l]!, dx, (name, g) => grad(`blocks.${l}.${name}`, g));
    }

    // Embedding backward.
    const emb = embedTokensBackwardRef(dx, B, nP, nTok, D);
    const R = c.regTokens ?? 0;
    grad('pos_embed', emb.dpos.subarray((nTok - n.nPos) * D));
    if (c.tokens !== 'none') grad('cls_token', emb.dtokens.subarray(0, D));
    if (c.tokens === 'cls+dist') grad('dist_token', emb.dtokens.subarray(D, 2 * D));
    if (R) grad('reg_token', emb.dtokens.subarray((nTok - R) * D));
    const pe = patchEmbedBackwardRef(acts.input, emb.dpatches, B, C, n.Ht, n.Wd, P, D);
    grad('patch_embed.proj.weight', pe.dw);
    grad('patch_embed.proj.bias', pe.dbias);
    return grads;
  }
}
