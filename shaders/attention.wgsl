// Multi-head self-attention on timm's packed qkv: softmax(Q K^T * scale + bias) V per (batch, head).
//   qkv   (B, T, 3, H, hd)  read as vec4: hd % 4 == 0, hd <= 128
//   bias  (nb, nh, T, T)    optional additive bias/mask, read at (b % nb, h % nh)
//   out   (B, T, H, hd)     = (B, T, D), ready for the output projection
//   lse   (B, H, T)         log-sum-exp of each score row, saved for the backward pass
//   probs (B, H, T, T)      softmax probabilities, written only when WRITE_PROBS (visualisation)
// Thread mapping: one invocation per query row (forward, dQ) or key row (dK, dV); 32 per
// workgroup; grid x over rows, y over B*H. Each invocation keeps its row and accumulator in
// registers and streams the other side's rows from global memory: all invocations of a workgroup
// read the same key at the same time, which caches serve as a broadcast.
//
// attention_fused      one pass over keys with the online softmax (running max and denominator
//                      in f32, accumulator rescaled once per block of 4 keys).
// attention_naive      the simplest correct version, for benchmarks: max, sum, then weighted sum.
// attention_backward_dq, attention_backward_dkv   FlashAttention-2's backward without atomics:
//   p_ij = exp(s_ij - lse_i), D_i = dO_i . O_i, ds_ij = p_ij (dO_i . v_j - D_i)
//   dQ_i = scale sum_j ds_ij k_j;  dK_j = scale sum_i ds_ij q_i;  dV_j = sum_i p_ij dO_i
// The first pass writes D (delta) for the second.

struct Params {
  T: u32,
  H: u32,
  scale: f32,
  bias_nb: u32,
  bias_nh: u32,
  batch_heads: u32, // B * H
}

override HAS_BIAS: bool = false;
// Head dim / 4 as a pipeline constant: loops over it have a known trip count, so the compiler can
// unroll them and keep each row in registers (a loop bound read from a uniform keeps the rows in
// memory on CPU adapters). One pipeline per head dim; models use one or two.
override HD4: u32 = 16u;
override WRITE_PROBS: bool = false;

const MAX_HD4: u32 = 32u;
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

fn score(q: ptr<function, array<vec4<f32>, MAX_HD4>>, b: u32, h: u32, i: u32, j: u32, which: u32) -> f32 {
  let base = qkv_at(b, j, which, h);
  var s = 0.0;
  for (var d = 0u; d < HD4; d++) { s += dot((*q)[d], qkv[base + d]); }
  return s * params.scale + bias_at(b, h, i, j);
}

fn write_probs(q: ptr<function, array<vec4<f32>, MAX_HD4>>, b: u32, h: u32, i: u32, row_lse: f32) {
  let row = ((b * params.H + h) * params.T + i) * params.T;
  for (var j = 0u; j < params.T; j++) { probs[row + j] = exp(score(q, b, h, i, j, 1u) - row_lse); }
}

@compute @workgroup_size(32)
fn attention_fused(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let bh = gid.y;
  if (i >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var q: array<vec4<f32>, MAX_HD4>;
  var acc: array<vec4<f32>, MAX_HD4>;
  let qi = qkv_at(b, i, 0u, h);
  for (var d = 0u; d < HD4; d++) { q[d] = qkv[qi + d]; }
  var m = NEG_BIG;
  var l = 0.0;
  for (var j0 = 0u; j0 < params.T; j0 += 4u) {
    // Scores of 4 keys; keys past the end get NEG_BIG and so weight 0 (their index is clamped).
    // Four keys' scores at once, each key row read once; constant vector indices only.
    let jj = min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.T - 1u));
    let k0 = qkv_at(b, jj.x, 1u, h);
    let k1 = qkv_at(b, jj.y, 1u, h);
    let k2 = qkv_at(b, jj.z, 1u, h);
    let k3 = qkv_at(b, jj.w, 1u, h);
    var dots = vec4<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      let qd = q[d];
      dots += vec4<f32>(dot(qd, qkv[k0 + d]), dot(qd, qkv[k1 + d]), dot(qd, qkv[k2 + d]), dot(qd, qkv[k3 + d]));
    }
    var s = dots * params.scale;
    if (HAS_BIAS) { s += vec4<f32>(bias_at(b, h, i, jj.x), bias_at(b, h, i, jj.y), bias_at(b, h, i, jj.z), bias_at(b, h, i, jj.w)); }
    s = select(vec4<f32>(NEG_BIG), s, vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.T));
    let m_new = max(m, max(max(s.x, s.y), max(s.z, s.w)));
    let correction = exp(m - m_new);
    let p = exp(s - vec4<f32>(m_new));
    l = l * correction + p.x + p.y + p.z + p.w;
    let v0 = qkv_at(b, jj.x, 2u, h);
    let v1 = qkv_at(b, jj.y, 2u, h);
    let v2 = qkv_at(b, jj.z, 2u, h);
    let v3 = qkv_at(b, jj.w, 2u, h);
    for (var d = 0u; d < HD4; d++) {
      acc[d] = acc[d] * correction + p.x * qkv[v0 + d] + p.y * qkv[v1 + d] + p.z * qkv[v2 + d] + p.w * qkv[v3 + d];
    }
    m = m_new;
  }
  let o = out_at(b, i, h);
  let inv_l = 1.0 / l;
  for (var d = 0u; d < HD4; d++) { out[o + d] = acc[d] * inv_l; }
  let row_lse = m + log(l);
  lse[bh * params.T + i] = row_lse;
  if (WRITE_PROBS) { write_probs(&q, b, h, i, row_lse); }
}

@compute @workgroup_size(32)
fn attention_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let bh = gid.y;
  if (i >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var q: array<vec4<f32>, MAX_HD4>;
  var acc: array<vec4<f32>, MAX_HD4>;
  let qi = qkv_at(b, i, 0u, h);
  for (var d = 0u; d < HD4; d++) { q[d] = qkv[qi + d]; }
  var m = NEG_BIG;
  for (var j = 0u; j < params.T; j++) { m = max(m, score(&q, b, h, i, j, 1u)); }
  var l = 0.0;
  for (var j = 0u; j < params.T; j++) { l += exp(score(&q, b, h, i, j, 1u) - m); }
  for (var j = 0u; j < params.T; j++) {
    let p = exp(score(&q, b, h, i, j, 1u) - m) / l;
    let vj = qkv_at(b, j, 2u, h);
    for (var d = 0u; d < HD4; d++) { acc[d] += p * qkv[vj + d]; }
  }
  let o = out_at(b, i, h);
  for (var d = 0u; d < HD4; d++) { out[o + d] = acc[d]; }
  let row_lse = m + log(l);
  lse[bh * params.T + i] = row_lse;
  if (WRITE_PROBS) { write_probs(&q, b, h, i, row_lse); }
}

/** Index vector of rows r0 .. r0 + 3, clamped to the sequence, and which of them are real. */
fn rows4(r0: u32) -> vec4<u32> {
  return min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.T - 1u));
}

fn real4(r0: u32) -> vec4<bool> {
  return vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.T);
}

// Both backward kernels walk the other side's rows four at a time (as the forward does with keys):
// each private vector of this thread's row is read once per four rows, and rows past the end get
// weight 0.
@compute @workgroup_size(32)
fn attention_backward_dq(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let bh = gid.y;
  if (i >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var q: array<vec4<f32>, MAX_HD4>;
  var dout_i: array<vec4<f32>, MAX_HD4>;
  var dq: array<vec4<f32>, MAX_HD4>;
  let qi = qkv_at(b, i, 0u, h);
  let oi = out_at(b, i, h);
  var d_i = 0.0;
  for (var d = 0u; d < HD4; d++) {
    q[d] = qkv[qi + d];
    dout_i[d] = dout[oi + d];
    d_i += dot(dout_i[d], out[oi + d]);
  }
  delta[bh * params.T + i] = d_i;
  let row_lse = lse[bh * params.T + i];
  for (var j0 = 0u; j0 < params.T; j0 += 4u) {
    let jj = rows4(j0);
    let k0 = qkv_at(b, jj.x, 1u, h);
    let k1 = qkv_at(b, jj.y, 1u, h);
    let k2 = qkv_at(b, jj.z, 1u, h);
    let k3 = qkv_at(b, jj.w, 1u, h);
    let v0 = qkv_at(b, jj.x, 2u, h);
    let v1 = qkv_at(b, jj.y, 2u, h);
    let v2 = qkv_at(b, jj.z, 2u, h);
    let v3 = qkv_at(b, jj.w, 2u, h);
    var s = vec4<f32>(0.0);
    var dp = vec4<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      let qd = q[d];
      let gd = dout_i[d];
      s += vec4<f32>(dot(qd, qkv[k0 + d]), dot(qd, qkv[k1 + d]), dot(qd, qkv[k2 + d]), dot(qd, qkv[k3 + d]));
      dp += vec4<f32>(dot(gd, qkv[v0 + d]), dot(gd, qkv[v1 + d]), dot(gd, qkv[v2 + d]), dot(gd, qkv[v3 + d]));
    }
    s *= params.scale;
    if (HAS_BIAS) { s += vec4<f32>(bias_at(b, h, i, jj.x), bias_at(b, h, i, jj.y), bias_at(b, h, i, jj.z), bias_at(b, h, i, jj.w)); }
    let p = select(vec4<f32>(0.0), exp(s - vec4<f32>(row_lse)), real4(j0));
    let ds = p * (dp - vec4<f32>(d_i));
    for (var d = 0u; d < HD4; d++) {
      dq[d] += ds.x * qkv[k0 + d] + ds.y * qkv[k1 + d] + ds.z * qkv[k2 + d] + ds.w * qkv[k3 + d];
    }
  }
  for (var d = 0u; d < HD4; d++) { dqkv[qi + d] = dq[d] * params.scale; }
}

@compute @workgroup_size(32)
fn attention_backward_dkv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let bh = gid.y;
  if (j >= params.T || bh >= params.batch_heads) { return; }
  let b = bh / params.H;
  let h = bh % params.H;
  var k: array<vec4<f32>, MAX_HD4>;
  var v: array<vec4<f32>, MAX_HD4>;
  var dk: array<vec4<f32>, MAX_HD4>;
  var dv: array<vec4<f32>, MAX_HD4>;
  let kj = qkv_at(b, j, 1u, h);
  let vj = qkv_at(b, j, 2u, h);
  for (var d = 0u; d < HD4; d++) {
    k[d] = qkv[kj + d];
    v[d] = qkv[vj + d];
  }
  for (var i0 = 0u; i0 < params.T; i0 += 4u) {
    // s_ij for four queries i with the roles swapped: k is this thread's row, q_i streams.
    let ii = rows4(i0);
    let q0 = qkv_at(b, ii.x, 0u, h);
    let q1 = qkv_at(b, ii.y, 0u, h);
    let q2 = qkv_at(b, ii.z, 0u, h);
    let q3 = qkv_at(b, ii.w, 0u, h);
    let o0 = out_at(b, ii.x, h);
    let o1 = out_at(b, ii.y, h);
    let o2 = out_at(b, ii.z, h);
    let o3 = out_at(b, ii.w, h);
    var s = vec4<f32>(0.0);
    var dp = vec4<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      let kd = k[d];
      let vd = v[d];
      s += vec4<f32>(dot(kd, qkv[q0 + d]), dot(kd, qkv[q1 + d]), dot(kd, qkv[q2 + d]), dot(kd, qkv[q3 + d]));
      dp += vec4<f32>(dot(vd, dout[o0 + d]), dot(vd, dout[o1 + d]), dot(vd, dout[o2 + d]), dot(vd, dout[o3 + d]));
    }
    s *= params.scale;
    if (HAS_BIAS) { s += vec4<f32>(bias_at(b, h, ii.x, j), bias_at(b, h, ii.y, j), bias_at(b, h, ii.z, j), bias_at(b, h, ii.w, j)); }
    let row = bh * params.T;
    let lse4 = vec4<f32>(lse[row + ii.x], lse[row + ii.y], lse[row + ii.z], lse[row + ii.w]);
    let delta4 = vec4<f32>(delta[row + ii.x], delta[row + ii.y], delta[row + ii.z], delta[row + ii.w]);
    let p = select(vec4<f32>(0.0), exp(s - lse4), real4(i0));
    let ds = p * (dp - delta4);
    for (var d = 0u; d < HD4; d++) {
      dv[d] += p.x * dout[o0 + d] + p.y * dout[o1 + d] + p.z * dout[o2 + d] + p.w * dout[o3 + d];
      dk[d] += ds.x * qkv[q0 + d] + ds.y * qkv[q1 + d] + ds.z * qkv[q2 + d] + ds.w * qkv[q3 + d];
    }
  }
  for (var d = 0u; d < HD4; d++) {
    dqkv[kj + d] = dk[d] * params.scale;
    dqkv[vj + d] = dv[d];
  }
}
