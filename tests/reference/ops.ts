// Float64 reference implementations of every kernel, forward and backward: plain loops that
// read like the math. They are checked themselves by finite differences
// (tests/reference.node.test.ts). All arrays are row-major.

/** C (batch, M, N) = op(A) op(B); A is (batchA, M, K) or (batchA, K, M) if transA; batchA/batchB 1 broadcasts. */
export function matmulRef(
  a: ArrayLike<number>, b: ArrayLike<number>,
  s: { batch: number; M: number; N: number; K: number; transA?: boolean; transB?: boolean; batchA?: number; batchB?: number },
): Float64Array {
  const { batch, M, N, K } = s;
  const c = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = ((s.batchA ?? batch) === 1 ? 0 : z) * M * K;
    const bo = ((s.batchB ?? batch) === 1 ? 0 : z) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const av = s.transA ? a[ao + k * M + i]! : a[ao + i * K + k]!;
          const bv = s.transB ? b[bo + j * K + k]! : b[bo + k * N + j]!;
          sum += av * bv;
        }
        c[z * M * N + i * N + j] = sum;
      }
    }
  }
  return c;
}

/** Gradients of matmulRef: da in A's storage layout, db in B's; broadcast operands (batchA/batchB 1) sum over the batch. */
export function matmulBackwardRef(
  a: ArrayLike<number>, b: ArrayLike<number>, dc: ArrayLike<number>,
  s: { batch: number; M: number; N: number; K: number; transA?: boolean; transB?: boolean; batchA?: number; batchB?: number },
): { da: Float64Array; db: Float64Array } {
  const { batch, M, N, K } = s;
  const da = new Float64Array(a.length);
  const db = new Float64Array(b.length);
  for (let z = 0; z < batch; z++) {
    const ao = ((s.batchA ?? batch) === 1 ? 0 : z) * M * K;
    const bo = ((s.batchB ?? batch) === 1 ? 0 : z) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        const g = dc[z * M * N + i * N + j]!;
        for (let k = 0; k < K; k++) {
          // c[i,j] += opA[i,k] * opB[k,j], so dopA[i,k] += g * opB[k,j] and dopB[k,j] += g * opA[i,k].
          const ai = s.transA ? ao + k * M + i : ao + i * K + k;
          const bi = s.transB ? bo + j * K + k : bo + k * N + j;
          da[ai] = da[ai]! + g * b[bi]!;
          db[bi] = db[bi]! + g * a[ai]!;
        }
      }
    }
  }
  return { da, db };
}

// ---- erf / erfc in float64 ----

const SQRT_PI = Math.sqrt(Math.PI);

/** exp(-x^2) without the rounding error of x*x: split x = hi + lo with hi on a 1/16 grid, so hi*hi is exact. */
function expNegSquare(x: number): number {
  const hi = Math.round(x * 16) / 16;
  return Math.exp(-hi * hi) * Math.exp(-(x - hi) * (x + hi));
}

/** erf(x), |x| < 3: the all-positive series erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)). */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
  }
  return (2 / SQRT_PI) * expNegSquare(x) * sum;
}

/** erfc(x), x >= 1: continued fraction e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), by Lentz's method. */
function erfcFraction(x: number): number {
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 10_000; n++) {
    d = 1 / (x + (n / 2) * d);
    c = x + n / 2 / c;
    f *= c * d;
    if (Math.abs(c * d - 1) < 1e-16) break;
  }
  return expNegSquare(x) / SQRT_PI / f;
}

/** Error function, about 1e-15 relative. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  const r = ax < 3 ? erfSeries(ax) : 1 - erfcFraction(ax);
  return x < 0 ? -r : r;
}

/** Complementary error function 1 - erf(x), accurate relative to itself in the tail (x >= 1). */
export function erfc(x: number): number {
  return x < 1 ? 1 - erf(x) : erfcFraction(x);
}

/** Standard normal CDF Phi(x) = erfc(-x/sqrt2)/2, with no cancellation for negative x. */
function normalCdf(x: number): number {
  return x < 0 ? 0.5 * erfc(-x / Math.SQRT2) : 0.5 * (1 + erf(x / Math.SQRT2));
}

// ---- element-wise ----

/** y (n) = x Phi(x): exact GELU. */
export function geluRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => v * normalCdf(v));
}

/** dx (n) = dy * (Phi(x) + x phi(x)), phi the standard normal density. */
export function geluBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => dy[i]! * (normalCdf(v) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI)));
}

// ---- layer norm ----

/** x (rows, D), gamma/beta (D) -> y (rows, D), mean/rstd (rows); y = (x - mean) rstd gamma + beta, biased variance. */
export function layerNormRef(
  x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, rows: number, D: number, eps: number,
): { y: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(rows * D);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[r * D + d]!;
    mu /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[r * D + d]! - mu) ** 2;
    const rs = 1 / Math.sqrt(v / D + eps);
    for (let d = 0; d < D; d++) y[r * D + d] = (x[r * D + d]! - mu) * rs * gamma[d]! + beta[d]!;
    mean[r] = mu;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

/** dx (rows, D) = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma; dgamma (D) = sum_r dy xhat; dbeta (D) = sum_r dy. */
export function layerNormBackwardRef(
  x: ArrayLike<number>, gamma: ArrayLike<number>, dy: ArrayLike<number>, rows: number, D: number, eps: number,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { mean, rstd } = layerNormRef(x, gamma, new Float64Array(D), rows, D, eps);
  const dx = new Float64Array(rows * D);
  const dgamma = new Float64Array(D);
  const dbeta = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const xhat = (d: number): number => (x[r * D + d]! - mean[r]!) * rstd[r]!;
    let meanG = 0;
    let meanGX = 0;
    for (let d = 0; d < D; d++) {
      const g = dy[r * D + d]! * gamma[d]!;
      meanG += g / D;
      meanGX += (g * xhat(d)) / D;
      dgamma[d] = dgamma[d]! + dy[r * D + d]! * xhat(d);
      dbeta[d] = dbeta[d]! + dy[r * D + d]!;
    }
    for (let d = 0; d < D; d++) dx[r * D + d] = rstd[r]! * (dy[r * D + d]! * gamma[d]! - meanG - xhat(d) * meanGX);
  }
  return { dx, dgamma, dbeta };
}

// ---- attention ----

export interface AttentionShape { B: number; T: number; H: number; hd: number; scale: number; bias?: { data: ArrayLike<number>; nb: number; nh: number } }

/** Index into qkv (B, T, 3, H, hd) of element d of q (which 0), k (1) or v (2) for batch b, token t, head h. */
function qkvIndex(s: AttentionShape, b: number, t: number, which: number, h: number, d: number): number {
  const D = s.H * s.hd;
  return ((b * s.T + t) * 3 + which) * D + h * s.hd + d;
}

/** qkv (B, T, 3*H*hd) -> out (B, T, H*hd), probs (B, H, T, T), lse (B, H, T); p = softmax_j(scale q_i.k_j + bias). */
export function attentionRef(qkv: ArrayLike<number>, s: AttentionShape): { out: Float64Array; probs: Float64Array; lse: Float64Array } {
  const { B, T, H, hd } = s;
  const D = H * hd;
  const out = new Float64Array(B * T * D);
  const probs = new Float64Array(B * H * T * T);
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const biasBase = s.bias ? ((b % s.bias.nb) * s.bias.nh + (h % s.bias.nh)) * T * T : 0;
      for (let i = 0; i < T; i++) {
        const row = new Float64Array(T);
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += qkv[qkvIndex(s, b, i, 0, h, d)]! * qkv[qkvIndex(s, b, j, 1, h, d)]!;
          row[j] = s.scale * dot + (s.bias ? s.bias.data[biasBase + i * T + j]! : 0);
        }
        const max = Math.max(...row);
        let sum = 0;
        for (let j = 0; j < T; j++) sum += Math.exp(row[j]! - max);
        lse[bh * T + i] = max + Math.log(sum);
        for (let j = 0; j < T; j++) {
          const p = Math.exp(row[j]! - max) / sum;
          probs[(bh * T + i) * T + j] = p;
          for (let d = 0; d < hd; d++) out[(b * T + i) * D + h * hd + d] = out[(b * T + i) * D + h * hd + d]! + p * qkv[qkvIndex(s, b, j, 2, h, d)]!;
        }
      }
    }
  }
  return { out, probs, lse };
}

/** dqkv (B, T, 3*H*hd) from dout (B, T, H*hd): dV = P^T dO, dS = P (dO V^T - rowsum(P dO V^T)), dQ = scale dS K, dK = scale dS^T Q. */
export function attentionBackwardRef(qkv: ArrayLike<number>, dout: ArrayLike<number>, s: AttentionShape): Float64Array {
  const { B, T, H, hd } = s;
  const D = H * hd;
  const { probs } = attentionRef(qkv, s);
  const dqkv = new Float64Array(qkv.length);
  const add = (idx: number, v: number): void => { dqkv[idx] = dqkv[idx]! + v; };
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const P = (i: number, j: number): number => probs[((b * H + h) * T + i) * T + j]!;
      const dO = (i: number, d: number): number => dout[(b * T + i) * D + h * hd + d]!;
      for (let i = 0; i < T; i++) {
        // dP_ij = dO_i . v_j, then the softmax backward dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik).
        const dP = new Float64Array(T);
        for (let j = 0; j < T; j++) for (let d = 0; d < hd; d++) dP[j] = dP[j]! + dO(i, d) * qkv[qkvIndex(s, b, j, 2, h, d)]!;
        let rowDot = 0;
        for (let j = 0; j < T; j++) rowDot += P(i, j) * dP[j]!;
        for (let j = 0; j < T; j++) {
          const dS = P(i, j) * (dP[j]! - rowDot);
          for (let d = 0; d < hd; d++) {
            add(qkvIndex(s, b, i, 0, h, d), s.scale * dS * qkv[qkvIndex(s, b, j, 1, h, d)]!);
            add(qkvIndex(s, b, j, 1, h, d), s.scale * dS * qkv[qkvIndex(s, b, i, 0, h, d)]!);
            add(qkvIndex(s, b, j, 2, h, d), P(i, j) * dO(i, d));
          }
        }
      }
    }
  }
  return dqkv;
}

// ---- cross entropy ----

export type CETarget = { labels: ArrayLike<number>; smoothing: number } | { soft: ArrayLike<number> };

/** logits (N, C) -> loss (N) = -sum_c t_c log softmax(z)_c, dlogits (N, C) = (softmax - t) / N; a label outside [0, C) gives NaN. */
export function crossEntropyRef(logits: ArrayLike<number>, N: number, C: number, target: CETarget): { loss: Float64Array; dlogits: Float64Array } {
  const loss = new Float64Array(N);
  const dlogits = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const t = new Float64Array(C);
    if ('soft' in target) {
      for (let c = 0; c < C; c++) t[c] = target.soft[n * C + c]!;
    } else {
      const label = target.labels[n]!;
      const valid = Number.isInteger(label) && label >= 0 && label < C;
      for (let c = 0; c < C; c++) t[c] = valid ? (c === label ? 1 - target.smoothing : 0) + target.smoothing / C : NaN;
    }
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, logits[n * C + c]!);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(logits[n * C + c]! - max);
    const logZ = max + Math.log(sum);
    let l = 0;
    for (let c = 0; c < C; c++) {
      const z = logits[n * C + c]!;
      l -= t[c]! * (z - logZ);
      dlogits[n * C + c] = (Math.exp(z - logZ) - t[c]!) / N;
    }
    loss[n] = l;
  }
  return { loss, dlogits };
}

// ---- optimizer ----

export interface AdamWConfig { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number; gradScale: number }

/** One AdamW step on p, g, m, v (n), PyTorch semantics (decoupled weight decay, bias correction, step from 1). */
export function adamwRef(
  p: ArrayLike<number>, g: ArrayLike<number>, m: ArrayLike<number>, v: ArrayLike<number>, c: AdamWConfig,
): { p: Float64Array; m: Float64Array; v: Float64Array } {
  const n = p.length;
  const pOut = new Float64Array(n);
  const mOut = new Float64Array(n);
  const vOut = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const grad = g[i]! * c.gradScale;
    let param = p[i]! - c.lr * c.weightDecay * p[i]!;
    mOut[i] = c.beta1 * m[i]! + (1 - c.beta1) * grad;
    vOut[i] = c.beta2 * v[i]! + (1 - c.beta2) * grad * grad;
    const mHat = mOut[i]! / (1 - c.beta1 ** c.step);
    const vHat = vOut[i]! / (1 - c.beta2 ** c.step);
    param -= (c.lr * mHat) / (Math.sqrt(vHat) + c.eps);
    pOut[i] = param;
  }
  return { p: pOut, m: mOut, v: vOut };
}

/** sum_i x_i^2 over x (n). */
export function sumSquaresRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s;
}

// ---- tokens ----

/** patches (B, P, D), tokens (nTok, D), pos (nTok+P, D) -> out (B, nTok+P, D) = [tokens; patches[b]] + pos. */
export function embedTokensRef(
  patches: ArrayLike<number>, tokens: ArrayLike<number>, pos: ArrayLike<number>, B: number, P: number, nTok: number, D: number,
): Float64Array {
  const T = nTok + P;
  const out = new Float64Array(B * T * D);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        const x = t < nTok ? tokens[t * D + d]! : patches[(b * P + t - nTok) * D + d]!;
        out[(b * T + t) * D + d] = x + pos[t * D + d]!;
      }
    }
  }
  return out;
}

/** dout (B, nTok+P, D) -> dpatches (B, P, D), dtokens (nTok, D) and dpos (nTok+P, D) summed over the batch. */
export function embedTokensBackwardRef(
  dout: ArrayLike<number>, B: number, P: number, nTok: number, D: number,
): { dpatches: Float64Array; dtokens: Float64Array; dpos: Float64Array } {
  const T = nTok + P;
  const dpatches = new Float64Array(B * P * D);
  const dtokens = new Float64Array(nTok * D);
  const dpos = new Float64Array(T * D);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        const g = dout[(b * T + t) * D + d]!;
        dpos[t * D + d] = dpos[t * D + d]! + g;
        if (t < nTok) dtokens[t * D + d] = dtokens[t * D + d]! + g;
        else dpatches[(b * P + t - nTok) * D + d] = g;
      }
    }
  }
  return { dpatches, dtokens, dpos };
}

/** x (B, T, D) -> (B, D): mean over tokens start..T-1. */
export function meanPoolRef(x: ArrayLike<number>, B: number, T: number, D: number, start: number): Float64Array {
  const out = new Float64Array(B * D);
  for (let b = 0; b < B; b++) {
    for (let t = start; t < T; t++) for (let d = 0; d < D; d++) out[b * D + d] = out[b * D + d]! + x[(b * T + t) * D + d]!;
    for (let d = 0; d < D; d++) out[b * D + d] = out[b * D + d]! / (T - start);
  }
  return out;
}

/** dy (B, D) -> dx (B, T, D): dy / (T - start) on tokens start..T-1, zero before. */
export function meanPoolBackwardRef(dy: ArrayLike<number>, B: number, T: number, D: number, start: number): Float64Array {
  const dx = new Float64Array(B * T * D);
  for (let b = 0; b < B; b++) {
    for (let t = start; t < T; t++) for (let d = 0; d < D; d++) dx[(b * T + t) * D + d] = dy[b * D + d]! / (T - start);
  }
  return dx;
}

// ---- patch embedding ----

/** img (B, C, H, W) -> cols (B, nP, C*P*P), patch n = py*(W/P) + px, column c*P*P + ky*P + kx. */
export function patchifyRef(img: ArrayLike<number>, B: number, C: number, H: number, W: number, P: number): Float64Array {
  const nx = W / P;
  const nP = (H / P) * nx;
  const K = C * P * P;
  const cols = new Float64Array(B * nP * K);
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < nP; n++) {
      const py = Math.floor(n / nx);
      const px = n % nx;
      for (let c = 0; c < C; c++) {
        for (let ky = 0; ky < P; ky++) {
          for (let kx = 0; kx < P; kx++) {
            cols[(b * nP + n) * K + c * P * P + ky * P + kx] = img[((b * C + c) * H + py * P + ky) * W + px * P + kx]!;
          }
        }
      }
    }
  }
  return cols;
}

/** img (B, C, H, W), w (D, C, P, P), bias (D) -> out (B, nP, D) = bias + conv(img, w) with kernel = stride = P. */
export function patchEmbedRef(
  img: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>, B: number, C: number, H: number, W: number, P: number, D: number,
): Float64Array {
  const cols = patchifyRef(img, B, C, H, W, P);
  const K = C * P * P;
  const rows = cols.length / K;
  const out = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < D; o++) {
      let sum = bias[o]!;
      for (let k = 0; k < K; k++) sum += w[o * K + k]! * cols[r * K + k]!;
      out[r * D + o] = sum;
    }
  }
  return out;
}

/** dout (B, nP, D) -> dw (D, C, P, P) = sum over patches of dout x patch, dbias (D) = sum over patches of dout. */
export function patchEmbedBackwardRef(
  img: ArrayLike<number>, dout: ArrayLike<number>, B: number, C: number, H: number, W: number, P: number, D: number,
): { dw: Float64Array; dbias: Float64Array } {
  const cols = patchifyRef(img, B, C, H, W, P);
  const K = C * P * P;
  const rows = cols.length / K;
  const dw = new Float64Array(D * K);
  const dbias = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < D; o++) {
      const g = dout[r * D + o]!;
      dbias[o] = dbias[o]! + g;
      for (let k = 0; k < K; k++) dw[o * K + k] = dw[o * K + k]! + g * cols[r * K + k]!;
    }
  }
  return { dw, dbias };
}
