// Position embeddings for an image size other than the checkpoint's: the patch-grid part is
// resampled bicubically (PyTorch's F.interpolate mode='bicubic', align_corners=False, a = -0.75,
// edges clamped); prefix tokens (cls, dist) keep theirs.
//   pos (nTok + oldH*oldW, D) -> (nTok + newH*newW, D)

const A = -0.75;

function cubicWeights(t: number): [number, number, number, number] {
  const w = (x: number): number => {
    x = Math.abs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
  };
  return [w(t + 1), w(t), w(1 - t), w(2 - t)];
}

/** Per output index: the 4 source indices (clamped) and their weights along one axis. */
function axis(inSize: number, outSize: number): { idx: number[]; w: number[] }[] {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, o) => {
    const src = (o + 0.5) * scale - 0.5;
    const i0 = Math.floor(src);
    const weights = cubicWeights(src - i0);
    const idx = [i0 - 1, i0, i0 + 1, i0 + 2].map((i) => Math.min(Math.max(i, 0), inSize - 1));
    return { idx, w: weights };
  });
}

export function resizePosEmbed(pos: Float32Array, nTok: number, D: number, from: [number, number], to: [number, number]): Float32Array {
  const [h0, w0] = from;
  const [h1, w1] = to;
  if (pos.length !== (nTok + h0 * w0) * D) throw new Error(`pos_embed has ${pos.length / D} tokens, expected ${nTok + h0 * w0}`);
  const out = new Float32Array((nTok + h1 * w1) * D);
  out.set(pos.subarray(0, nTok * D));
  if (h0 === h1 && w0 === w1) {
    out.set(pos.subarray(nTok * D), nTok * D);
    return out;
  }
  const ys = axis(h0, h1);
  const xs = axis(w0, w1);
  const acc = new Float64Array(D);
  for (let y = 0; y < h1; y++) {
    for (let x = 0; x < w1; x++) {
      acc.fill(0);
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          const wt = ys[y]!.w[i]! * xs[x]!.w[j]!;
          const src = (nTok + ys[y]!.idx[i]! * w0 + xs[x]!.idx[j]!) * D;
          for (let d = 0; d < D; d++) acc[d] = acc[d]! + wt * pos[src + d]!;
        }
      }
      out.set(acc, (nTok + y * w1 + x) * D);
    }
  }
  return out;
}
