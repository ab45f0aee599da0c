// NaN and infinities: one in a weight or an input spreads through every matmul and layer norm
// after it, and the result is all NaN. They are found where they enter (a checkpoint at load, an
// input before the run) and, as a last guard, in the logits, and named there.

/** The index of the first NaN or infinity in `data`, or -1 when every value is finite. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v - v is 0 for every finite v and NaN for NaN and both infinities: one test, no branches on which.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** "NaN", "Infinity" or "-Infinity". */
export const describeValue = (v: number): string => String(v);

/** Throws "checkpoint: NAME holds NaN at index I" for a tensor with a non-finite value. */
export function checkFiniteTensor(name: string, data: ArrayLike<number>): void {
  const at = firstNonFinite(data);
  if (at >= 0) throw new Error(`checkpoint: ${name} holds ${describeValue(data[at]!)} at index ${at}`);
}
