// The small ops of a ViT, element-wise, one thread per output element (256 per workgroup, grid x*y).
//   embed_tokens      out (B, nTok + P, D) = [cls (D); dist (D); reg (R, D); patches (B, P, D)],
//                     plus pos (nTok - posFrom + P, D) on tokens posFrom.. : nTok = cls and dist
//                     (0, 1 or 2: cls, then DeiT's distillation token) + R register tokens;
//                     posFrom = 0 (timm's default: every token has a position) or nTok
//                     (no_embed_class: the patches only)
//   embed_tokens_backward   dpatches (B, P, D) = dout rows nTok.. ; dcls, ddist, dreg and dpos are
//                     column sums of dout over the batch (reduce.wgsl)
//   pool_tokens       out (B, D) = mean of x (B, T, D) over tokens [start, end): `avg` global pool
//                     (start = number of prefix tokens) or the cls token (start 0, end 1)
//   pool_tokens_backward    dx (B, T, D) = dout / (end - start) on those tokens, 0 elsewhere
//                     (with ACCUMULATE, added to dx: DeiT-distilled pools two tokens)
//   add               out = (a + b) * alpha (residual connections; alpha = 1/2 averages DeiT's two heads)
//   accumulate        out += a (gradient of a residual branch joining the skip path)
//   copy_values       out = a (a block's output kept as a feature map before later blocks reuse its buffer)

struct Params {
  n: u32,       // output elements
  B: u32,
  T: u32,       // tokens of the sequence (nTok + P)
  D: u32,
  n_tok: u32,   // embed: prefix tokens; pool: start
  end: u32,     // pool: end (exclusive)
  alpha: f32,   // add: output scale
  n_reg: u32,   // embed: register tokens, the last n_reg of the n_tok prefix tokens
  pos_from: u32, // embed: the first token with a position embedding (0 or n_tok)
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> d: array<f32>;
@group(0) @binding(6) var<storage, read> e: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// a = patches, b = cls, d = dist, e = reg, c = pos
@compute @workgroup_size(256)
fn embed_tokens(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let dd = i % params.D;
  let t = (i / params.D) % params.T;
  let batch = i / (params.D * params.T);
  let first_reg = params.n_tok - params.n_reg;
  var value: f32;
  if (t >= params.n_tok) {
    value = a[(batch * (params.T - params.n_tok) + t - params.n_tok) * params.D + dd];
  } else if (t >= first_reg) {
    value = e[(t - first_reg) * params.D + dd];
  } else if (t == 0u) {
    value = b[dd];
  } else {
    value = d[dd];
  }
  if (t >= params.pos_from) { value += c[(t - params.pos_from) * params.D + dd]; }
  out[i] = value;
}

// a = dout; out = dpatches
@compute @workgroup_size(256)
fn embed_tokens_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let P = params.T - params.n_tok;
  let d = i % params.D;
  let p = (i / params.D) % P;
  let batch = i / (params.D * P);
  out[i] = a[(batch * params.T + params.n_tok + p) * params.D + d];
}

// a = x; out (B, D)
@compute @workgroup_size(256)
fn pool_tokens(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let d = i % params.D;
  let batch = i / params.D;
  var s = 0.0;
  for (var t = params.n_tok; t < params.end; t++) { s += a[(batch * params.T + t) * params.D + d]; }
  out[i] = s / f32(params.end - params.n_tok);
}

// a = dout (B, D); out = dx (B, T, D)
@compute @workgroup_size(256)
fn pool_tokens_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let d = i % params.D;
  let t = (i / params.D) % params.T;
  let batch = i / (params.D * params.T);
  let inside = t >= params.n_tok && t < params.end;
  var v = select(0.0, a[batch * params.D + d] / f32(params.end - params.n_tok), inside);
  if (ACCUMULATE) { v += out[i]; }
  out[i] = v;
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i < params.n) { out[i] = (a[i] + b[i]) * params.alpha; }
}

@compute @workgroup_size(256)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i < params.n) { out[i] += a[i]; }
}

@compute @workgroup_size(256)
fn copy_values(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i < params.n) { out[i] = a[i]; }
}
