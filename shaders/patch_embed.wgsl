// Patch embedding is a convolution with kernel = stride = P; we run it as patchify + matmul.
// patchify rearranges image (B, C, H, W) into cols (B, nP, C*P*P), patch n = py * (W/P) + px,
// column c*P*P + ky*P + kx: the flattening of a conv weight (D, C, P, P), so that
// out = cols W^T + bias (matmul with TRANS_B) and dW = dout^T cols. dX is never needed (images).
// One thread per element of cols, 256 per workgroup, grid x*y.

struct Params {
  n: u32,
  C: u32,
  H: u32,
  W: u32,
  P: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256)
fn patchify(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let P = params.P;
  let patch_len = params.C * P * P;
  let grid_w = params.W / P;
  let n_patches = (params.H / P) * grid_w;
  let col = i % patch_len;
  let patch_index = (i / patch_len) % n_patches;
  let batch = i / (patch_len * n_patches);
  let ch = col / (P * P);
  let ky = (col / P) % P;
  let kx = col % P;
  let yy = (patch_index / grid_w) * P + ky;
  let xx = (patch_index % grid_w) * P + kx;
  cols[i] = image[((batch * params.C + ch) * params.H + yy) * params.W + xx];
}
