// Position embeddings for an image size other than the checkpoint's: the patch-grid part is
// resampled bicubically (PyTorch's F.interpolate mode='bicubic', align_corners=False, a = -0.75,
// edges clamped); prefix tokens (cls, dist) keep theirs.
//   pos (nTok + oldH*oldW, D) -> (nTok + newH*newW, D)
// With `antialias` (timm's resample_abs_pos_embed, which timm uses for every other size:
// loading at another img_size and dynamic_img_size; F.interpolate with antialias=True): PyTorch's antialiased bicubic, a = -0.5, the kernel stretched by the
// scale when shrinking so every source row counts, weights renormalised at the edges.

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

/**
 * One axis of PyTorch's antialiased bicubic (aten UpSampleKernel's _compute_indices_weights_aa):
 * per output index the source indices it reads and their normalised weights.
 */
function axisAntialiased(inSize: number, outSize: number): { idx: number[]; w: number[] }[] {
  const a = -0.5;
  const filter = (x: number): number => {
    x = Math.abs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  };
  const scale = inSize / outSize;
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  return Array.from({ length: outSize }, (_, o) => {
    const center = scale * (o + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const idx: number[] = [];
    const w: number[] = [];
    for (let j = lo; j < hi; j++) {
      idx.push(j);
      w.push(filter((j - center + 0.5) * invScale));
    }
    const total = w.reduce((s, v) => s + v, 0);
    return { idx, w: w.map((v) => (total !== 0 ? v / total : 0)) };
  });
}

export function resizePosEmbed(pos: Float32Array, nTok: number, D: number, from: [number, number], to: [number, number], options: { antialias?: boolean } = {}): Float32Array {
  const [h0, w0] = from;
  const [h1, w1] = to;
  if (pos.length !== (nTok + h0 * w0) * D) throw new Error(`pos_embed has ${pos.length / D} tokens, expected ${nTok + h0 * w0}`);
  const out = new Float32Array((nTok + h1 * w1) * D);
  out.set(pos.subarray(0, nTok * D));
  if (h0 === h1 && w0 === w1) {
    out.set(pos.subarray(nTok * D), nTok * D);
    return out;
  }
  const along = options.antialias ? axisAntialiased : axis;
  const ys = along(h0, h1);
  const xs = along(w0, w1);
  const acc = new Float64Array(D);
  for (let y = 0; y < h1; y++) {
    for (let x = 0; x < w1; x++) {
      acc.fill(0);
      for (let i = 0; i < ys[y]!.idx.length; i++) {
        for (let j = 0; j < xs[x]!.idx.length; j++) {
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
