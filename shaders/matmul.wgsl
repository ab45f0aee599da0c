// Batched matrix multiply with fused epilogue:
//   C[b] (M x N) = op(A[b]) (M x K) * op(B[b]) (K x N) [+ bias (N)] [-> GELU] [+ C[b] if ACCUMULATE]
// op() transposes when TRANS_A / TRANS_B are set: A is stored (K x M), B is stored (N x K). The
// latter is PyTorch's nn.Linear weight layout, so y = x W^T + b is TRANS_B with the weight as B.
// Backward passes are matmuls with other flags: dA = dC B^T, dB = A^T dC; dbias is reduce.wgsl.
// Batch strides are in elements; a stride of 0 broadcasts (one weight matrix for every batch).
//
// Five entry points, same bindings and semantics:
//   matmul_naive     one thread per C element, 8x8 workgroups. The simplest correct kernel; a
//                    benchmark baseline.
//   matmul_registers each thread owns a 4x4 block of C and reads A and B straight from global
//                    memory, k unrolled by 4. No workgroup memory: best on CPU adapters (SwiftShader),
//                    where invocations are SIMD lanes and barriers serialise them.
//   matmul_registers_vec4  the same blocking with 16-byte loads along each operand's contiguous
//                    dimension: A's stored rows and B's stored rows must be multiples of 4 long
//                    (every ViT width is). Four times fewer loads, and on SwiftShader four times
//                    fewer bounds checks, than matmul_registers.
//   matmul_registers_vec4_8x8  the same with an 8x8 block per thread: half the loads again.
//   matmul_tiled     64x64 C tile per 16x16 workgroup, K in chunks of 16 through workgroup memory;
//                    thread (tx, ty) owns rows ty + 16i and columns tx + 16j (strided, so reads of
//                    the shared tiles do not conflict). For real GPUs.
// Grid: x over N, y over M, z over the batch.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// 0: none, 1: + bias, 2: + bias then GELU
override EPILOGUE: u32 = 0u;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
// The same buffers as a and b, read 16 bytes at a time (only by matmul_registers_vec4).
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

// Element (row, k) of op(A) for batch offset `base`.
fn load_a(base: u32, row: u32, k: u32) -> f32 {
  if (TRANS_A) { return a[base + k * params.M + row]; }
  return a[base + row * params.K + k];
}

// Element (k, col) of op(B).
fn load_b(base: u32, k: u32, col: u32) -> f32 {
  if (TRANS_B) { return b[base + col * params.K + k]; }
  return b[base + k * params.N + col];
}

fn store_c(batch: u32, row: u32, col: u32, value: f32) {
  var v = value;
  if (EPILOGUE >= 1u) { v += bias[col]; }
  if (EPILOGUE == 2u) { v = gelu(v); }
  let i = batch * params.stride_c + row * params.N + col;
  if (ACCUMULATE) { v += c[i]; }
  c[i] = v;
}

// The 4x4 block of C at (row0, col0) held by one thread of the register kernels; edges skipped.
fn store_block(batch: u32, row0: u32, col0: u32, acc: array<vec4<f32>, 4>) {
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i;
    if (row >= params.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < params.N) { store_c(batch, row, col0 + j, acc[i][j]); }
    }
  }
}

@compute @workgroup_size(8, 8)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  let row = gid.y;
  if (row >= params.M || col >= params.N) { return; }
  let base_a = gid.z * params.stride_a;
  let base_b = gid.z * params.stride_b;
  var sum = 0.0;
  for (var k = 0u; k < params.K; k++) {
    sum += load_a(base_a, row, k) * load_b(base_b, k, col);
  }
  store_c(gid.z, row, col, sum);
}

@compute @workgroup_size(8, 8)
fn matmul_registers(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= params.M || col0 >= params.N) { return; }
  let base_a = gid.z * params.stride_a;
  let base_b = gid.z * params.stride_b;
  // Rows and columns past the edge are clamped for loading (always in bounds) and never stored.
  let last_row = params.M - 1u;
  let last_col = params.N - 1u;
  let r = vec4<u32>(min(row0, last_row), min(row0 + 1u, last_row), min(row0 + 2u, last_row), min(row0 + 3u, last_row));
  let cc = vec4<u32>(min(col0, last_col), min(col0 + 1u, last_col), min(col0 + 2u, last_col), min(col0 + 3u, last_col));
  var acc: array<vec4<f32>, 4>;
  let k4 = params.K & ~3u;
  for (var k = 0u; k < k4; k += 4u) {
    for (var kk = 0u; kk < 4u; kk++) {
      let bv = vec4<f32>(load_b(base_b, k + kk, cc.x), load_b(base_b, k + kk, cc.y),
                         load_b(base_b, k + kk, cc.z), load_b(base_b, k + kk, cc.w));
      acc[0] += load_a(base_a, r.x, k + kk) * bv;
      acc[1] += load_a(base_a, r.y, k + kk) * bv;
      acc[2] += load_a(base_a, r.z, k + kk) * bv;
      acc[3] += load_a(base_a, r.w, k + kk) * bv;
    }
  }
  for (var k = k4; k < params.K; k++) {
    let bv = vec4<f32>(load_b(base_b, k, cc.x), load_b(base_b, k, cc.y), load_b(base_b, k, cc.z), load_b(base_b, k, cc.w));
    acc[0] += load_a(base_a, r.x, k) * bv;
    acc[1] += load_a(base_a, r.y, k) * bv;
    acc[2] += load_a(base_a, r.z, k) * bv;
    acc[3] += load_a(base_a, r.w, k) * bv;
  }
  store_block(gid.z, row0, col0, acc);
}

// 16 bytes of op(A) column-major storage (TRANS_A): rows row0..row0+3 at depth k; zeros past K.
fn a_at_depth(base: u32, k: u32, row0: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), a4[(base + min(k, params.K - 1u) * params.M + row0) / 4u], k < params.K);
}

// 16 bytes of op(B) row-major storage (!TRANS_B): columns col0..col0+3 at depth k; zeros past K.
fn b_at_depth(base: u32, k: u32, col0: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), b4[(base + min(k, params.K - 1u) * params.N + col0) / 4u], k < params.K);
}

// a[i][kk] = op(A)[row0 + i, k + kk]: 4 rows at depths k..k+3. Rows past M repeat loadable data
// (clamped) and are never stored; row0 is a multiple of 4.
fn a_block(base: u32, row0: u32, k: u32) -> mat4x4<f32> {
  if (TRANS_A) {
    // Stored rows are whole vec4s (M % 4 == 0), so a block that starts inside M lies inside it.
    let r = min(row0, params.M - 4u);
    return transpose(mat4x4<f32>(a_at_depth(base, k, r), a_at_depth(base, k + 1u, r),
                                 a_at_depth(base, k + 2u, r), a_at_depth(base, k + 3u, r)));
  }
  let last = params.M - 1u;
  return mat4x4<f32>(a4[(base + min(row0, last) * params.K + k) / 4u], a4[(base + min(row0 + 1u, last) * params.K + k) / 4u],
                     a4[(base + min(row0 + 2u, last) * params.K + k) / 4u], a4[(base + min(row0 + 3u, last) * params.K + k) / 4u]);
}

// bt[j][kk] = op(B)[k + kk, col0 + j]: 4 columns at depths k..k+3, clamped like a_block.
fn bt_block(base: u32, k: u32, col0: u32) -> mat4x4<f32> {
  if (TRANS_B) {
    let last = params.N - 1u;
    return mat4x4<f32>(b4[(base + min(col0, last) * params.K + k) / 4u], b4[(base + min(col0 + 1u, last) * params.K + k) / 4u],
                       b4[(base + min(col0 + 2u, last) * params.K + k) / 4u], b4[(base + min(col0 + 3u, last) * params.K + k) / 4u]);
  }
  let c = min(col0, params.N - 4u);
  return transpose(mat4x4<f32>(b_at_depth(base, k, c), b_at_depth(base, k + 1u, c),
                               b_at_depth(base, k + 2u, c), b_at_depth(base, k + 3u, c)));
}

// Every vector and matrix below is indexed with constants only: a run-time index into a vector
// makes SwiftShader keep it in memory (this kernel ran at half speed written with loops).
// acc_i[j] += sum_kk a[i][kk] * bt[j][kk] is the row vector a[i] times the matrix bt.
@compute @workgroup_size(8, 8)
fn matmul_registers_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= params.M || col0 >= params.N) { return; }
  let base_a = gid.z * params.stride_a;
  let base_b = gid.z * params.stride_b;
  var acc0 = vec4<f32>(0.0); // C[row0 + i, col0 .. col0 + 3] for i = 0..3
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < params.K; k += 4u) {
    let a = a_block(base_a, row0, k);
    let bt = bt_block(base_b, k, col0);
    acc0 += a[0] * bt;
    acc1 += a[1] * bt;
    acc2 += a[2] * bt;
    acc3 += a[3] * bt;
  }
  store_block(gid.z, row0, col0, array<vec4<f32>, 4>(acc0, acc1, acc2, acc3));
}

// The same with an 8x8 block of C per thread, as four 4x4 quadrants: 16 vec4 loads feed 256
// multiply-adds, twice the reuse of the 4x4 block. Needs a grid big enough to keep every core
// busy with 64x64 workgroups (src/kernels/matmul.ts decides).
@compute @workgroup_size(8, 8)
fn matmul_registers_vec4_8x8(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 8u;
  let col0 = gid.x * 8u;
  if (row0 >= params.M || col0 >= params.N) { return; }
  let base_a = gid.z * params.stride_a;
  let base_b = gid.z * params.stride_b;
  var acc00 = vec4<f32>(0.0); // C[row0 + i, col0 .. col0 + 3] for i = 0..7
  var acc10 = vec4<f32>(0.0);
  var acc20 = vec4<f32>(0.0);
  var acc30 = vec4<f32>(0.0);
  var acc40 = vec4<f32>(0.0);
  var acc50 = vec4<f32>(0.0);
  var acc60 = vec4<f32>(0.0);
  var acc70 = vec4<f32>(0.0);
  var acc01 = vec4<f32>(0.0); // C[row0 + i, col0 + 4 .. col0 + 7]
  var acc11 = vec4<f32>(0.0);
  var acc21 = vec4<f32>(0.0);
  var acc31 = vec4<f32>(0.0);
  var acc41 = vec4<f32>(0.0);
  var acc51 = vec4<f32>(0.0);
  var acc61 = vec4<f32>(0.0);
  var acc71 = vec4<f32>(0.0);
  for (var k = 0u; k < params.K; k += 4u) {
    let a0 = a_block(base_a, row0, k);
    let a1 = a_block(base_a, row0 + 4u, k);
    let b0 = bt_block(base_b, k, col0);
    let b1 = bt_block(base_b, k, col0 + 4u);
    acc00 += a0[0] * b0;
    acc10 += a0[1] * b0;
    acc20 += a0[2] * b0;
    acc30 += a0[3] * b0;
    acc40 += a1[0] * b0;
    acc50 += a1[1] * b0;
    acc60 += a1[2] * b0;
    acc70 += a1[3] * b0;
    acc01 += a0[0] * b1;
    acc11 += a0[1] * b1;
    acc21 += a0[2] * b1;
    acc31 += a0[3] * b1;
    acc41 += a1[0] * b1;
    acc51 += a1[1] * b1;
    acc61 += a1[2] * b1;
    acc71 += a1[3] * b1;
  }
  store_block(gid.z, row0, col0, array<vec4<f32>, 4>(acc00, acc10, acc20, acc30));
  store_block(gid.z, row0, col0 + 4u, array<vec4<f32>, 4>(acc01, acc11, acc21, acc31));
  store_block(gid.z, row0 + 4u, col0, array<vec4<f32>, 4>(acc40, acc50, acc60, acc70));
  store_block(gid.z, row0 + 4u, col0 + 4u, array<vec4<f32>, 4>(acc41, acc51, acc61, acc71));
}

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
var<workgroup> tile_a: array<f32, 1024>; // [TILE_K][TILE]: op(A) chunk, k-major
var<workgroup> tile_b: array<f32, 1024>; // [TILE_K][TILE]: op(B) chunk, k-major

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile_row = wid.y * TILE;
  let tile_col = wid.x * TILE;
  let base_a = wid.z * params.stride_a;
  let base_b = wid.z * params.stride_b;
  let t = lid.y * 16u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < params.K; k0 += TILE_K) {
    // 256 threads load 1024 elements of each tile: 4 each, zero outside the matrices.
    for (var i = 0u; i < 4u; i++) {
      let e = t + i * 256u;
      let kk = e / TILE;
      let mm = e % TILE;
      let k = k0 + kk;
      var va = 0.0;
      var vb = 0.0;
      if (k < params.K && tile_row + mm < params.M) { va = load_a(base_a, tile_row + mm, k); }
      if (k < params.K && tile_col + mm < params.N) { vb = load_b(base_b, k, tile_col + mm); }
      tile_a[e] = va;
      tile_b[e] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        av[i] = tile_a[kk * TILE + lid.y + 16u * i];
        bv[i] = tile_b[kk * TILE + lid.x + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] += av[i] * bv[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = tile_row + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let col = tile_col + lid.x + 16u * j;
      if (row < params.M && col < params.N) { store_c(wid.z, row, col, acc[i][j]); }
    }
  }
}
