// Column sums: out[c] (+)= sum over r < rows of x[offset + r * row_stride + c], for c < cols.
// The gradient of anything broadcast over rows: a bias (dbias = column sums of dY), the
// position embedding and class tokens (sums over the batch).
// One thread per column, 64 per workgroup, grid x*y; each loops over the rows in order.

struct Params {
  rows: u32,
  cols: u32,
  row_stride: u32,
  offset: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn sum_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * 64u;
  if (c >= params.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < params.rows; r++) { s += x[params.offset + r * params.row_stride + c]; }
  if (ACCUMULATE) { s += out[c]; }
  out[c] = s;
}
