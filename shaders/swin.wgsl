// The index maps of the Swin Transformer (timm 1.0): shifted windows, relative position bias with
// the shift mask, and patch merging. Pure permutations with zero padding, plus the bias lookup.
//   B batch, H x W token map (row-major, so x is (B, H*W, C)), C channels
//   window wh x ww, shift (sh, sw), the map padded at bottom/right to Hp x Wp = (gh*wh) x (gw*ww)
//   nW = gh * gw windows per image, N = wh * ww tokens per window, nh heads
//   table ((2wh-1) * (2ww-1), nh)   relative position bias table, timm's layout
//
// Window layout: timm rolls the map by (-sh, -sw), then pads, then partitions; window w = (wy, wx)
// row-major over the (gh, gw) window grid, tokens row-major inside a window. A window position
// (y', x') of the rolled, padded map holds token ((y' + sh) mod H, (x' + sw) mod W), or zero when
// y' >= H or x' >= W (padding). Rolling before padding (timm 1.0's order) and padding before
// rolling differ only on maps that are both padded and shifted; this follows timm 1.0.
//
// window_partition             windows (B*nW, N, C) <- x (B, H*W, C); padded rows read as 0.
//                              Also the backward of window_reverse.
// window_reverse               x (B, H*W, C) (+)= windows (B*nW, N, C): reverse, crop, roll back;
//                              padded rows are dropped. Also the backward of window_partition.
//                              ACCUMULATE adds into x (a residual stream, or its gradient).
// relative_position_bias       bias (planes, nh, N, N) = table[index(i, j), h] + mask[w, i, j];
//                              planes = nW with a shift (mask -100 between different regions of
//                              timm's img_mask), else 1 (no mask).
// relative_position_bias_backward   dtable (+)= sum over the planes p and the pairs (i, j) of
//                              relative offset idx of dbias (planes, nh, N, N). A gather: each table
//                              entry enumerates its pairs, so no atomics.
// patch_merge                  out (B, Ho*Wo, 4C) <- x (B, H*W, C), Ho = ceil(H/2), Wo = ceil(W/2):
//                              out[b, (i, j)] = [x(2i, 2j), x(2i+1, 2j), x(2i, 2j+1), x(2i+1, 2j+1)],
//                              padded positions 0 (timm's reshape(B, Ho, 2, Wo, 2, C).permute(0, 1, 3, 4, 2, 5)).
// patch_merge_backward         dx (B, H*W, C) (+)= the entries of dout (B, Ho*Wo, 4C) that x fed.
//
// Thread mapping: one invocation per output element (scalar: C need not be a multiple of 4),
// 256 per workgroup, grid x*y. Every output reads exactly one input (or loops over its own pairs),
// so no output is written twice and none needs atomics.

struct Params {
  n: u32,         // output elements
  C: u32,
  H: u32,
  W: u32,
  wh: u32,        // window height and width
  ww: u32,
  sh: u32,        // shift, 0 <= sh < wh
  sw: u32,
  gh: u32,        // window grid (patch merging: the output map Ho x Wo)
  gw: u32,
  heads: u32,
  planes: u32,    // bias planes: nW with a mask, else 1; backward: planes of dbias summed
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

fn store(i: u32, v: f32) {
  if (ACCUMULATE) { dst[i] += v; } else { dst[i] = v; }
}

// ---- shifted windows ----

// src = x (B, H*W, C); dst = windows (B*nW, N, C)
@compute @workgroup_size(256)
fn window_partition(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let N = params.wh * params.ww;
  let nW = params.gh * params.gw;
  let c = i % params.C;
  let p = (i / params.C) % N;
  let w = (i / (params.C * N)) % nW;
  let b = i / (params.C * N * nW);
  // Position in the rolled, padded map.
  let y = (w / params.gw) * params.wh + p / params.ww;
  let x = (w % params.gw) * params.ww + p % params.ww;
  var v = 0.0;
  if (y < params.H && x < params.W) {
    let ty = (y + params.sh) % params.H;
    let tx = (x + params.sw) % params.W;
    v = src[((b * params.H + ty) * params.W + tx) * params.C + c];
  }
  dst[i] = v;
}

// src = windows (B*nW, N, C); dst = x (B, H*W, C)
@compute @workgroup_size(256)
fn window_reverse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let c = i % params.C;
  let t = (i / params.C) % (params.H * params.W);
  let b = i / (params.C * params.H * params.W);
  // Token (ty, tx) sits at (ty - sh, tx - sw) mod (H, W) of the rolled map, never in the padding.
  let y = (t / params.W + params.H - params.sh) % params.H;
  let x = (t % params.W + params.W - params.sw) % params.W;
  let w = (y / params.wh) * params.gw + x / params.ww;
  let p = (y % params.wh) * params.ww + x % params.ww;
  let N = params.wh * params.ww;
  store(i, src[((b * params.gh * params.gw + w) * N + p) * params.C + c]);
}

// ---- relative position bias and shift mask ----

// Region of a rolled-map coordinate along one axis: timm fills img_mask by the slices
// [0, -win), [-win, -shift), [-shift, end) of the padded length. With shift 0 timm's last slice
// [-0:] = [0:] covers the whole axis instead; both split the axis only at window boundaries, and
// the mask compares regions within one window, so the masks agree.
fn region(y: u32, padded: u32, win: u32, shift: u32) -> u32 {
  if (y < padded - win) { return 0u; }
  if (y < padded - shift) { return 1u; }
  return 2u;
}

fn region_id(w: u32, p: u32) -> u32 {
  let y = (w / params.gw) * params.wh + p / params.ww;
  let x = (w % params.gw) * params.ww + p % params.ww;
  return region(y, params.gh * params.wh, params.wh, params.sh) * 3u + region(x, params.gw * params.ww, params.ww, params.sw);
}

// src = table ((2wh-1)*(2ww-1), nh); dst = bias (planes, nh, N, N)
@compute @workgroup_size(256)
fn relative_position_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let N = params.wh * params.ww;
  let kj = i % N;
  let qi = (i / N) % N;
  let h = (i / (N * N)) % params.heads;
  let w = i / (N * N * params.heads);
  // (yi - yj + wh - 1) * (2ww - 1) + (xi - xj + ww - 1), every term kept non-negative in u32.
  let row = qi / params.ww + params.wh - 1u - kj / params.ww;
  let col = qi % params.ww + params.ww - 1u - kj % params.ww;
  var v = src[(row * (2u * params.ww - 1u) + col) * params.heads + h];
  if ((params.sh > 0u || params.sw > 0u) && region_id(w, qi) != region_id(w, kj)) { v -= 100.0; }
  dst[i] = v;
}

// src = dbias (planes, nh, N, N); dst = dtable ((2wh-1)*(2ww-1), nh)
@compute @workgroup_size(256)
fn relative_position_bias_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let N = params.wh * params.ww;
  let h = i % params.heads;
  let idx = i / params.heads;
  // Offset (dy, dx) = (yi - yj, xi - xj) as row - (wh - 1), col - (ww - 1); the pairs with that offset
  // are yj in [max(0, -dy), min(wh, wh - dy)) with yi = yj + dy, and the same along x.
  let row = idx / (2u * params.ww - 1u);
  let col = idx % (2u * params.ww - 1u);
  let yj0 = select(0u, params.wh - 1u - row, row < params.wh - 1u);
  let yj1 = select(params.wh, 2u * params.wh - 1u - row, row > params.wh - 1u);
  let xj0 = select(0u, params.ww - 1u - col, col < params.ww - 1u);
  let xj1 = select(params.ww, 2u * params.ww - 1u - col, col > params.ww - 1u);
  var s = 0.0;
  for (var p = 0u; p < params.planes; p++) {
    let plane = (p * params.heads + h) * N * N;
    for (var yj = yj0; yj < yj1; yj++) {
      let yi = yj + row - (params.wh - 1u);
      for (var xj = xj0; xj < xj1; xj++) {
        let xi = xj + col - (params.ww - 1u);
        s += src[plane + (yi * params.ww + xi) * N + yj * params.ww + xj];
      }
    }
  }
  store(i, s);
}

// ---- patch merging ----
// gh x gw is the output map ceil(H/2) x ceil(W/2).

// src = x (B, H*W, C); dst = out (B, gh*gw, 4C)
@compute @workgroup_size(256)
fn patch_merge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let c = i % params.C;
  let q = (i / params.C) % 4u;          // quarter: (dy, dx) = (q % 2, q / 2)
  let o = (i / (4u * params.C)) % (params.gh * params.gw);
  let b = i / (4u * params.C * params.gh * params.gw);
  let y = 2u * (o / params.gw) + q % 2u;
  let x = 2u * (o % params.gw) + q / 2u;
  var v = 0.0;
  if (y < params.H && x < params.W) { v = src[((b * params.H + y) * params.W + x) * params.C + c]; }
  dst[i] = v;
}

// src = dout (B, gh*gw, 4C); dst = dx (B, H*W, C)
@compute @workgroup_size(256)
fn patch_merge_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let c = i % params.C;
  let t = (i / params.C) % (params.H * params.W);
  let b = i / (params.C * params.H * params.W);
  let y = t / params.W;
  let x = t % params.W;
  let o = (y / 2u) * params.gw + x / 2u;
  let q = y % 2u + 2u * (x % 2u);
  store(i, src[((b * params.gh * params.gw + o) * 4u + q) * params.C + c]);
}
