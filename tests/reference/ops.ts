// Float64 reference implementations of every kernel, forward and backward: plain loops that
// read like the math. They are checked themselves by finite differences
// (tests/reference.node.test.ts). All arrays are row-major.

/** C (batch, M, N) = op(A) op(B); A is (batchA, M, K) or (batchA, K, M) if transA; batchA/batchB 1 broadcasts. */
export function matmulRef(
  a: ArrayLike<number>, b: ArrayLike<number>,
  s: { batch: number; M: number; N: number; K: number; transA?: boolean; transB?: boolean; batchA?: number; batchB?: number },
): Float64Array {
  const { batch, M, N, K } = s;
  const c = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = ((s.batchA ?? batch) === 1 ? 0 : z) * M * K;
    const bo = ((s.batchB ?? batch) === 1 ? 0 : z) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const av = s.transA ? a[ao + k * M + i]! : a[ao + i * K + k]!;
          const bv = s.transB ? b[bo + j * K + k]! : b[bo + k * N + j]!;
          sum += av * bv;
        }
        c[z * M * N + i * N + j] = sum;
      }
    }
  }
  return c;
}
