// The dense head's own ops: bilinear upsampling of a token grid to the image, and the per-pixel loss.
//   upsample_bilinear           out (B, Ho * Wo, C) = bilinear(x) where x (B, prefix + h * w, C)
//                               holds `prefix` tokens (class, registers: skipped) then the h x w grid,
//                               row-major, channels last
//   upsample_bilinear_backward  dx (B, prefix + h * w, C) from dout (B, Ho * Wo, C): each source cell
//                               gathers the outputs that read it (no atomics); prefix rows get 0
//   sigmoid_bce                 per pixel: loss = BCE(sigmoid(z), t), dz = (sigmoid(z) - t) * grad_scale,
//                               z (N), t (N) in [0, 1]
//   softmax_ce                  per pixel: loss = -log softmax(z)[label], dz = (softmax(z) - onehot) *
//                               grad_scale, z (N, K), labels (N) as f32 in 0..K-1
// Bilinear as PyTorch's F.interpolate(mode='bilinear', align_corners=False) with an output size:
// per axis, scale = in / out, src = max(scale * (o + 0.5) - 0.5, 0), i0 = floor(src),
// i1 = min(i0 + 1, in - 1), weights 1 - (src - i0) and src - i0.
// A target outside its range gives a NaN loss, which training treats as a failed step.
// One thread per output element, 256 per workgroup, grid x*y.

struct Params {
  n: u32,        // elements written: out, dx, or pixels
  C: u32,        // channels; classes for softmax_ce
  h: u32,        // source grid
  w: u32,
  Ho: u32,       // output size
  Wo: u32,
  prefix: u32,   // tokens before the grid in x / dx
  scale_y: f32,  // h / Ho
  scale_x: f32,  // w / Wo
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// The source coordinate of output index o along an axis of n_in cells (PyTorch's clamped form).
fn source(o: u32, scale: f32) -> f32 {
  return max(scale * (f32(o) + 0.5) - 0.5, 0.0);
}

// The weight with which output o reads source cell s along one axis (0 where it does not).
fn axis_weight(o: u32, s: u32, scale: f32, n_in: u32) -> f32 {
  let src = source(o, scale);
  let i0 = min(u32(floor(src)), n_in - 1u);
  let i1 = min(i0 + 1u, n_in - 1u);
  let l1 = src - f32(i0);
  return select(0.0, 1.0 - l1, i0 == s) + select(0.0, l1, i1 == s);
}

@compute @workgroup_size(256)
fn upsample_bilinear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let C = params.C;
  let c = i % C;
  let pixel = i / C;
  let ox = pixel % params.Wo;
  let oy = (pixel / params.Wo) % params.Ho;
  let b = pixel / (params.Wo * params.Ho);
  let sy = source(oy, params.scale_y);
  let sx = source(ox, params.scale_x);
  let y0 = min(u32(floor(sy)), params.h - 1u);
  let x0 = min(u32(floor(sx)), params.w - 1u);
  let y1 = min(y0 + 1u, params.h - 1u);
  let x1 = min(x0 + 1u, params.w - 1u);
  let ly = sy - f32(y0);
  let lx = sx - f32(x0);
  let base = b * (params.prefix + params.h * params.w) + params.prefix;
  let v00 = x[(base + y0 * params.w + x0) * C + c];
  let v01 = x[(base + y0 * params.w + x1) * C + c];
  let v10 = x[(base + y1 * params.w + x0) * C + c];
  let v11 = x[(base + y1 * params.w + x1) * C + c];
  out[i] = (1.0 - ly) * ((1.0 - lx) * v00 + lx * v01) + ly * ((1.0 - lx) * v10 + lx * v11);
}

// The output indices along an axis that may read source cell s: src(o) in [s - 1, s + 1), widened
// by one each side against rounding; axis_weight is exact inside.
fn reader_range(s: u32, scale: f32, n_out: u32) -> vec2<u32> {
  let lo = max(floor((f32(s) - 0.5) / scale - 0.5) - 1.0, 0.0);
  let hi = min(ceil((f32(s) + 1.5) / scale - 0.5) + 1.0, f32(n_out - 1u));
  return vec2<u32>(u32(lo), u32(hi));
}

@compute @workgroup_size(256)
fn upsample_bilinear_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let C = params.C;
  let c = i % C;
  let T = params.prefix + params.h * params.w;
  let token = (i / C) % T;
  let b = i / (C * T);
  if (token < params.prefix) {
    out[i] = 0.0;
    return;
  }
  let cell = token - params.prefix;
  let sy = cell / params.w;
  let sx = cell % params.w;
  let ry = reader_range(sy, params.scale_y, params.Ho);
  let rx = reader_range(sx, params.scale_x, params.Wo);
  var acc = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    let wy = axis_weight(oy, sy, params.scale_y, params.h);
    if (wy == 0.0) { continue; }
    let row = (b * params.Ho + oy) * params.Wo;
    var s = 0.0;
    for (var ox = rx.x; ox <= rx.y; ox++) {
      s += axis_weight(ox, sx, params.scale_x, params.w) * dout[(row + ox) * C + c];
    }
    acc += wy * s;
  }
  out[i] = acc;
}

// NaN through a runtime value: a constant NaN is a shader-creation error.
fn nan_of(i: u32) -> f32 {
  return bitcast<f32>(0x7fc00000u | (i & 0u));
}

@compute @workgroup_size(256)
fn sigmoid_bce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let z = x[i];
  let t = targets[i];
  // max(z, 0) - z t + log(1 + exp(-|z|)): stable for either sign of z.
  let l = max(z, 0.0) - z * t + log(1.0 + exp(-abs(z)));
  let p = select(exp(z) / (1.0 + exp(z)), 1.0 / (1.0 + exp(-z)), z >= 0.0);
  loss[i] = select(nan_of(i), l, t >= 0.0 && t <= 1.0);
  out[i] = (p - t) * params.grad_scale;
}

@compute @workgroup_size(256)
fn softmax_ce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let K = params.C;
  let base = i * K;
  let t = targets[i];
  let ok = t >= 0.0 && t < f32(K) && t == floor(t);
  let label = u32(max(t, 0.0));
  var m = -3.0e38;
  for (var k = 0u; k < K; k++) { m = max(m, x[base + k]); }
  var s = 0.0;
  for (var k = 0u; k < K; k++) { s += exp(x[base + k] - m); }
  let log_z = m + log(s);
  var zl = 0.0;
  for (var k = 0u; k < K; k++) {
    let z = x[base + k];
    if (k == label) { zl = z; }
    out[base + k] = (exp(z - log_z) - select(0.0, 1.0, k == label)) * params.grad_scale;
  }
  loss[i] = select(nan_of(i), log_z - zl, ok);
}
