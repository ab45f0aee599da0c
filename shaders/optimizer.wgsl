// AdamW (decoupled weight decay, PyTorch semantics) and the global gradient norm for clipping.
//   param, grad, m, v (n) one parameter tensor and its optimizer state
//   sumsq (1)             sum of squares of all gradients, from sum_squares_*
//   partials (256)        scratch for the two-pass sum of squares
// With CLIP, gradients are scaled by min(1, max_norm / (||g|| + 1e-6)) on the GPU, and a
// non-finite norm (NaN or Inf anywhere in the gradients) skips the update of every tensor, so the
// last good weights survive without a readback in the step.
// adamw_step: one thread per element, grid x*y. sum_squares_partial: 256 workgroups of 256
// threads, each strides over the data and writes one partial; sum_squares_final: one workgroup.

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bias_correction1: f32, // 1 - beta1^step
  bias_correction2: f32, // 1 - beta2^step
  max_norm: f32,
}

override CLIP: bool = false;
const WG: u32 = 256u;
const PARTIALS: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> sumsq: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

fn is_finite(x: f32) -> bool {
  // NaN and +-Inf have all exponent bits set.
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn adamw_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  var scale = 1.0;
  if (CLIP) {
    let total = sumsq[0];
    if (!is_finite(total)) { return; }
    scale = min(1.0, params.max_norm / (sqrt(total) + 1e-6));
  }
  let g = grad[i] * scale;
  var p = param[i] * (1.0 - params.lr * params.weight_decay);
  let mi = params.beta1 * m[i] + (1.0 - params.beta1) * g;
  let vi = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  p -= params.lr * (mi / params.bias_correction1) / (sqrt(vi / params.bias_correction2) + params.eps);
  param[i] = p;
}

var<workgroup> partial: array<f32, WG>;

fn workgroup_sum(x: f32, t: u32) -> f32 {
  partial[t] = x;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) { partial[t] += partial[t + stride]; }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(WG)
fn sum_squares_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var i = wid.x * WG + t; i < params.n; i += PARTIALS * WG) {
    let g = grad[i];
    s += g * g;
  }
  let total = workgroup_sum(s, t);
  if (t == 0u) { partials[wid.x] = total; }
}

@compute @workgroup_size(WG)
fn sum_squares_final(@builtin(local_invocation_index) t: u32) {
  let total = workgroup_sum(partials[t], t);
  if (t == 0u) { sumsq[0] = total; }
}
