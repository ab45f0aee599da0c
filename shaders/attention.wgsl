// Multi-head self-attention on timm's packed qkv: softmax(Q K^T * scale + bias) V per (batch, head).
//   qkv   (B, T, 3, H, hd)  read as vec4: hd % 4 == 0, hd <= 128
//   bias  (nb, nh, T, T)    optional additive bias/mask, read at (b % nb, h % nh)
//   out   (B, T, H, hd)     = (B, T, D), ready for the output projection
//   lse   (B, H, T)         log-sum-exp of each score row, saved for the backward pass
//   probs (B, H, T, T)      softmax probabilities, written only when WRITE_PROBS (visualisation)
//   dscores (B, H, T, T)    gradient of the scores (after the scale), written only when WRITE_DSCORES
// Thread mapping: each invocation owns ROWS consecutive rows of one side, query rows (forward, dQ)
// or key rows (dK, dV), and keeps them and their accumulators in private memory; 32 invocations
// per workgroup; grid x over blocks of ROWS rows, y over B*H. The other side's rows stream from
// global memory four at a time, and each vector loaded serves all ROWS rows of the invocation:
// loads dominate on CPU adapters, which take up to 8 rows; GPUs take 1. All invocations of a
// workgroup read the same row at the same time, which caches serve as a broadcast.
//
// attention_fused      one pass over keys with the online softmax (running max and denominator
//                      in f32, accumulator rescaled once per block of 4 keys).
// attention_naive      the simplest correct version, for benchmarks: max, sum, then weighted sum;
//                      one row per invocation whatever ROWS says.
// attention_backward_dq, attention_backward_dkv   FlashAttention-2's backward without atomics:
//   p_ij = exp(s_ij - lse_i), D_i = dO_i . O_i, ds_ij = p_ij (dO_i . v_j - D_i)
//   dQ_i = scale sum_j ds_ij k_j;  dK_j = scale sum_i ds_ij q_i;  dV_j = sum_i p_ij dO_i
// The first pass writes D (delta) for the second. With WRITE_DSCORES it also writes ds (B, H, T, T):
// d(score_ij), which is the gradient of an additive bias (the bias is added after the scale), for
// the caller to reduce over the batches and heads that share a bias plane (Swin's relative
// position bias). Off by default: ViT's backward compiles without the store.

struct Params {
  T: u32,
  H: u32,
  scale: f32,
  bias_nb: u32,
  bias_nh: u32,
  batch_heads: u32, // B * H
}

override HAS_BIAS: bool = false;
// Head dim / 4 and rows per invocation as pipeline constants: loops over them have known trip
// counts, so the compiler can unroll them and keep rows in registers (a loop bound read from a
// uniform keeps the rows in memory on CPU adapters). ROWS <= MAX_ROWS and ROWS * HD4 <= MAX_VECS;
// with every index constant after unrolling, only the entries used take registers.
override HD4: u32 = 16u;
override ROWS: u32 = 1u;
override WRITE_PROBS: bool = false;
override WRITE_DSCORES: bool = false;

const MAX_VECS: u32 = 128u;
const MAX_ROWS: u32 = 8u;
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> probs: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> delta: array<f32>;
@group(0) @binding(8) var<storage, read_write> dqkv: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> dscores: array<f32>;

// vec4 index of (b, t, which in {0: q, 1: k, 2: v}, h, d4) in qkv.
fn qkv_at(b: u32, t: u32, which: u32, h: u32) -> u32 {
  let d4 = params.H * HD4;
  return ((b * params.T + t) * 3u + which) * d4 + h * HD4;
}

// vec4 index of (b, t, h) in out / dout.
fn out_at(b: u32, t: u32, h: u32) -> u32 {
  return (b * params.T + t) * params.H * HD4 + h * HD4;
}

fn bias_at(b: u32, h: u32, i: u32, j: u32) -> f32 {
  if (!HAS_BIAS) { return 0.0; }
  let plane = (b % params.bias_nb) * params.bias_nh + (h % params.bias_nh);
  return bias[(plane * params.T + i) * params.T + j];
}

/** Index vector of rows r0 .. r0 + 3, clamped to the sequence, and which of them are real. */
fn rows4(r0: u32) -> vec4<u32> {
  return min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.T - 1u));
}

fn real4(r0: u32) -> vec4<bool> {
  return vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.T);
}

// Vector d of four rows of q, k or v (which) at the row indices `t`, as the columns of a matrix:
// x * m is then the vector of the four dot products with x, and m * p their sum weighted by p.
fn qkv4(b: u32, t: vec4<u32>, which: u32, h: u32, d: u32) -> mat4x4<f32> {
  return mat4x4<f32>(qkv[qkv_at(b, t.x, which, h) + d], qkv[qkv_at(b, t.y, which, h) + d],
                     qkv[qkv_at(b, t.z, which, h) + d], qkv[qkv_at(b, t.w, which, h) + d]);
}

// The same for four rows of dO.
fn dout4(b: u32, t: vec4<u32>, h: u32, d: u32) -> mat4x4<f32> {
  return mat4x4<f32>(dout[out_at(b, t.x, h) + d], dout[out_at(b, t.y, h) + d],
                     dout[out_at(b, t.z, h) + d], dout[out_at(b, t.w, h) + d]);
}

// Bias of row i against the four columns jj, and of the four rows ii against column j.
fn bias_row4(b: u32, h: u32, i: u32, jj: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(bias_at(b, h, i, jj.x), bias_at(b, h, i, jj.y), bias_at(b, h, i, jj.z), bias_at(b, h, i, jj.w));
}

fn bias_col4(b: u32, h: u32, ii: vec4<u32>, j: u32) -> vec4<f32> {
  return vec4<f32>(bias_at(b, h, ii.x, j), bias_at(b, h, ii.y, j), bias_at(b, h, ii.z, j), bias_at(b, h, ii.w, j));
}

/** Row r of this invocation's block, clamped: rows past the end repeat the last one and are not written. */
fn own_row(first: u32, r: u32) -> u32 {
  return min(first + r, params.T - 1u);
}

fn score(q: ptr<function, array<vec4<f32>, MAX_VECS>>, r: u32, b: u32, h: u32, i: u32, j: u32) -> f32 {
  let base = qkv_at(b, j, 1u, h);
  var s = 0.0;
  for (var d = 0u; d < HD4; d++) { s += dot((*q)[r * HD4 + d], qkv[base + d]); }
  return s * params.scale + bias_at(b, h, i, j);
}

fn write_probs(q: ptr<function, array<vec4<f32>, MAX_VECS>>, r: u32, b: u32, h: u32, i: u32, row_lse: f32) {
  let row = ((b * params.H + h) * params.T + i) * params.T;
  for (var j = 0u; j < params.T; j++) { probs[row + j] = exp(score(q, r, b, h, i, j) - row_lse); }
}

// ds of row i against the keys j0 .. j0 + 3 that are real.
fn write_dscores(bh: u32, i: u32, j0: u32, ds: vec4<f32>) {
  let row = (bh * params.T + i) * params.T;
  for (var k = 0u; k < 4u; k++) {
    if (j0 + k < params.T) { dscores[row + j0 + k] = ds[k]; }
  }
}

@compute @workgroup_size(32)
fn attention_fused(@builtin(global_invocation_id) gid: vec3<u32>) {
  let first = gid.x * ROWS;
  let bh = gid.y;
  if (first >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var q: array<vec4<f32>, MAX_VECS>;
  var acc: array<vec4<f32>, MAX_VECS>;
  var m: array<f32, MAX_ROWS>;
  var l: array<f32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    let qi = qkv_at(b, own_row(first, r), 0u, h);
    for (var d = 0u; d < HD4; d++) { q[r * HD4 + d] = qkv[qi + d]; }
    m[r] = NEG_BIG;
  }
  for (var j0 = 0u; j0 < params.T; j0 += 4u) {
    // Scores of 4 keys for every row; keys past the end get NEG_BIG and so weight 0 (their index
    // is clamped). Constant vector indices only.
    let jj = rows4(j0);
    // Zeroed by an explicit constructor: SwiftShader kept the previous iteration's values in a
    // `var` declared without initializer inside a loop.
    var s = array<vec4<f32>, MAX_ROWS>();
    for (var d = 0u; d < HD4; d++) {
      let kd = qkv4(b, jj, 1u, h, d);
      for (var r = 0u; r < ROWS; r++) { s[r] += q[r * HD4 + d] * kd; }
    }
    var p: array<vec4<f32>, MAX_ROWS>;
    var correction: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) {
      var sr = s[r] * params.scale;
      if (HAS_BIAS) { sr += bias_row4(b, h, own_row(first, r), jj); }
      sr = select(vec4<f32>(NEG_BIG), sr, real4(j0));
      let m_new = max(m[r], max(max(sr.x, sr.y), max(sr.z, sr.w)));
      correction[r] = exp(m[r] - m_new);
      p[r] = exp(sr - vec4<f32>(m_new));
      l[r] = l[r] * correction[r] + p[r].x + p[r].y + p[r].z + p[r].w;
      m[r] = m_new;
    }
    for (var d = 0u; d < HD4; d++) {
      let vd = qkv4(b, jj, 2u, h, d);
      for (var r = 0u; r < ROWS; r++) { acc[r * HD4 + d] = acc[r * HD4 + d] * correction[r] + vd * p[r]; }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    let i = first + r;
    if (i < params.T) {
      let o = out_at(b, i, h);
      let inv_l = 1.0 / l[r];
      for (var d = 0u; d < HD4; d++) { out[o + d] = acc[r * HD4 + d] * inv_l; }
      let row_lse = m[r] + log(l[r]);
      lse[bh * params.T + i] = row_lse;
      if (WRITE_PROBS) { write_probs(&q, r, b, h, i, row_lse); }
    }
  }
}

@compute @workgroup_size(32)
fn attention_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let bh = gid.y;
  if (i >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var q: array<vec4<f32>, MAX_VECS>;
  var acc: array<vec4<f32>, MAX_VECS>;
  let qi = qkv_at(b, i, 0u, h);
  for (var d = 0u; d < HD4; d++) { q[d] = qkv[qi + d]; }
  var m = NEG_BIG;
  for (var j = 0u; j < params.T; j++) { m = max(m, score(&q, 0u, b, h, i, j)); }
  var l = 0.0;
  for (var j = 0u; j < params.T; j++) { l += exp(score(&q, 0u, b, h, i, j) - m); }
  for (var j = 0u; j < params.T; j++) {
    let p = exp(score(&q, 0u, b, h, i, j) - m) / l;
    let vj = qkv_at(b, j, 2u, h);
    for (var d = 0u; d < HD4; d++) { acc[d] += p * qkv[vj + d]; }
  }
  let o = out_at(b, i, h);
  for (var d = 0u; d < HD4; d++) { out[o + d] = acc[d]; }
  let row_lse = m + log(l);
  lse[bh * params.T + i] = row_lse;
  if (WRITE_PROBS) { write_probs(&q, 0u, b, h, i, row_lse); }
}

// Both backward kernels walk the other side's rows four at a time, as the forward walks keys.
@compute @workgroup_size(32)
fn attention_backward_dq(@builtin(global_invocation_id) gid: vec3<u32>) {
  let first = gid.x * ROWS;
  let bh = gid.y;
  if (first >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var q: array<vec4<f32>, MAX_VECS>;
  var g: array<vec4<f32>, MAX_VECS>; // dO
  var dq: array<vec4<f32>, MAX_VECS>;
  var d_i: array<f32, MAX_ROWS>;
  var lse_i: array<f32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    let i = own_row(first, r);
    let qi = qkv_at(b, i, 0u, h);
    let oi = out_at(b, i, h);
    for (var d = 0u; d < HD4; d++) {
      q[r * HD4 + d] = qkv[qi + d];
      g[r * HD4 + d] = dout[oi + d];
      d_i[r] += dot(g[r * HD4 + d], out[oi + d]);
    }
    lse_i[r] = lse[bh * params.T + i];
  }
  for (var j0 = 0u; j0 < params.T; j0 += 4u) {
    let jj = rows4(j0);
    var s = array<vec4<f32>, MAX_ROWS>();
    var dp = array<vec4<f32>, MAX_ROWS>();
    for (var d = 0u; d < HD4; d++) {
      let kd = qkv4(b, jj, 1u, h, d);
      let vd = qkv4(b, jj, 2u, h, d);
      for (var r = 0u; r < ROWS; r++) {
        s[r] += q[r * HD4 + d] * kd;
        dp[r] += g[r * HD4 + d] * vd;
      }
    }
    var ds: array<vec4<f32>, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) {
      var sr = s[r] * params.scale;
      if (HAS_BIAS) { sr += bias_row4(b, h, own_row(first, r), jj); }
      let p = select(vec4<f32>(0.0), exp(sr - vec4<f32>(lse_i[r])), real4(j0));
      ds[r] = p * (dp[r] - vec4<f32>(d_i[r]));
      if (WRITE_DSCORES && first + r < params.T) { write_dscores(bh, first + r, j0, ds[r]); }
    }
    for (var d = 0u; d < HD4; d++) {
      let kd = qkv4(b, jj, 1u, h, d);
      for (var r = 0u; r < ROWS; r++) { dq[r * HD4 + d] += kd * ds[r]; }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    let i = first + r;
    if (i < params.T) {
      let qi = qkv_at(b, i, 0u, h);
      for (var d = 0u; d < HD4; d++) { dqkv[qi + d] = dq[r * HD4 + d] * params.scale; }
      delta[bh * params.T + i] = d_i[r];
    }
  }
}

@compute @workgroup_size(32)
fn attention_backward_dkv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let first = gid.x * ROWS;
  let bh = gid.y;
  if (first >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var k: array<vec4<f32>, MAX_VECS>;
  var v: array<vec4<f32>, MAX_VECS>;
  var dk: array<vec4<f32>, MAX_VECS>;
  var dv: array<vec4<f32>, MAX_VECS>;
  for (var r = 0u; r < ROWS; r++) {
    let j = own_row(first, r);
    let kj = qkv_at(b, j, 1u, h);
    let vj = qkv_at(b, j, 2u, h);
    for (var d = 0u; d < HD4; d++) {
      k[r * HD4 + d] = qkv[kj + d];
      v[r * HD4 + d] = qkv[vj + d];
    }
  }
  let row = bh * params.T;
  for (var i0 = 0u; i0 < params.T; i0 += 4u) {
    // s_ij for four queries i with the roles swapped: k is this invocation's row, q_i streams.
    let ii = rows4(i0);
    var s = array<vec4<f32>, MAX_ROWS>();
    var dp = array<vec4<f32>, MAX_ROWS>();
    for (var d = 0u; d < HD4; d++) {
      let qd = qkv4(b, ii, 0u, h, d);
      let gd = dout4(b, ii, h, d);
      for (var r = 0u; r < ROWS; r++) {
        s[r] += k[r * HD4 + d] * qd;
        dp[r] += v[r * HD4 + d] * gd;
      }
    }
    let lse4 = vec4<f32>(lse[row + ii.x], lse[row + ii.y], lse[row + ii.z], lse[row + ii.w]);
    let delta4 = vec4<f32>(delta[row + ii.x], delta[row + ii.y], delta[row + ii.z], delta[row + ii.w]);
    var p: array<vec4<f32>, MAX_ROWS>;
    var ds: array<vec4<f32>, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) {
      var sr = s[r] * params.scale;
      if (HAS_BIAS) { sr += bias_col4(b, h, ii, own_row(first, r)); }
      p[r] = select(vec4<f32>(0.0), exp(sr - lse4), real4(i0));
      ds[r] = p[r] * (dp[r] - delta4);
    }
    for (var d = 0u; d < HD4; d++) {
      let qd = qkv4(b, ii, 0u, h, d);
      let gd = dout4(b, ii, h, d);
      for (var r = 0u; r < ROWS; r++) {
        dv[r * HD4 + d] += gd * p[r];
        dk[r * HD4 + d] += qd * ds[r];
      }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    let j = first + r;
    if (j < params.T) {
      let kj = qkv_at(b, j, 1u, h);
      let vj = qkv_at(b, j, 2u, h);
      for (var d = 0u; d < HD4; d++) {
        dqkv[kj + d] = dk[r * HD4 + d] * params.scale;
        dqkv[vj + d] = dv[r * HD4 + d];
      }
    }
  }
}
