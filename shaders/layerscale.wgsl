// LayerScale (timm's `ls1` / `ls2`, CaiT, DeiT-III, DINOv2): a residual branch f [rows, D] scaled
// per channel by gamma [D] as it joins the skip path x [rows, D]. Fused into the residual add, so
// a block with LayerScale dispatches as many kernels as one without, and f stays unscaled for the
// backward pass (dgamma needs f; recovering it as out / gamma would fail for gamma = 0).
//   scale_add   out = x + gamma * f                      one thread per element (256, grid x*y)
//   scale       out = gamma * dy   (d f, from d out)     one thread per element
//   scale_grad  dgamma[d] (+)= sum over rows of dy * f   one thread per channel (64, grid x*y),
//               rows in order, as reduce.wgsl's column sums
// Bindings: x, f, dy [rows, D]; gamma, dgamma [D]; out [rows, D].

struct Params {
  n: u32,     // elements (rows * D)
  D: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> f: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn scale_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.n) { out[i] = x[i] + gamma[i % params.D] * f[i]; }
}

// x = dy
@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.n) { out[i] = gamma[i % params.D] * x[i]; }
}

// x = dy, out = dgamma [D]
@compute @workgroup_size(64)
fn scale_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d = gid.x + gid.y * nwg.x * 64u;
  if (d >= params.D) { return; }
  var s = 0.0;
  for (var i = d; i < params.n; i += params.D) { s += x[i] * f[i]; }
  if (ACCUMULATE) { s += out[d]; }
  out[d] = s;
}
