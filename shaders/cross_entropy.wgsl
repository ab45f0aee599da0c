// Softmax cross-entropy, loss and gradient in one pass per row.
//   logits, dlogits (N, C)   labels (N) class indices stored as f32   soft (N, C) target rows
//   loss (N) per-row loss
// Targets: hard labels smoothed to (1 - smoothing) * onehot + smoothing / C, or, with
// SOFT_TARGETS, soft rows used as given (mixup / cutmix). dlogits = (softmax - target) * grad_scale,
// grad_scale = 1 / N for a mean over the batch (smaller under gradient accumulation).
// A label outside [0, C) gives a NaN loss, which the trainer treats as a failed step.
// One 64-thread workgroup per row (grid x*y); threads stride over classes.

struct Params {
  N: u32,
  C: u32,
  smoothing: f32,
  grad_scale: f32,
}

override SOFT_TARGETS: bool = false;
const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> soft: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn reduce(v: f32, t: u32, take_max: bool) -> f32 {
  partial[t] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) {
      partial[t] = select(partial[t] + partial[t + stride], max(partial[t], partial[t + stride]), take_max);
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

fn target_of(row: u32, c: u32, label: u32) -> f32 {
  if (SOFT_TARGETS) { return soft[row * params.C + c]; }
  return select(0.0, 1.0 - params.smoothing, c == label) + params.smoothing / f32(params.C);
}

@compute @workgroup_size(WG)
fn cross_entropy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) t: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.N) { return; }
  let base = row * params.C;
  var label = 0u;
  var bad_label = false;
  if (!SOFT_TARGETS) {
    let l = labels[row];
    bad_label = !(l >= 0.0 && l < f32(params.C));
    label = u32(max(l, 0.0));
  }
  var m = -3.0e38;
  for (var c = t; c < params.C; c += WG) { m = max(m, logits[base + c]); }
  m = reduce(m, t, true);
  var s = 0.0;
  for (var c = t; c < params.C; c += WG) { s += exp(logits[base + c] - m); }
  let log_z = m + log(reduce(s, t, false));
  // loss = -sum_c t_c (z_c - log_z)
  var l = 0.0;
  for (var c = t; c < params.C; c += WG) {
    let z = logits[base + c];
    let tc = target_of(row, c, label);
    l -= tc * (z - log_z);
    dlogits[base + c] = (exp(z - log_z) - tc) * params.grad_scale;
  }
  l = reduce(l, t, false);
  // The NaN pattern goes through a runtime value: a constant NaN is a shader-creation error.
  if (t == 0u) { loss[row] = select(l, bitcast<f32>(0x7fc00000u | (t & 0u)), bad_label); }
}
