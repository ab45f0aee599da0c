// The dense per-patch head of the seeds' medical example: the patch tokens after the final norm as
// an (h, w) grid, bilinear upsampling to the image (align_corners=False), then an MLP on every
// pixel, Linear D -> W1, GELU, ..., Linear -> K (K = 1: a sigmoid mask; K >= 2: softmax classes),
// at `<name>.fc1`, `<name>.fc2`, ... Legend: B batch, T tokens (prefix + h*w), D width, P = Ho*Wo
// pixels, W1 the first layer's width.
//
// The seed upsamples the D-wide tokens and applies fc1 to every pixel. Bilinear interpolation is a
// per-channel weighted sum whose weights sum to 1, so it commutes with an affine map: fc1 (with its
// bias) runs on the T tokens and the upsampling on W1 channels instead, the same result for a
// fraction of the work (ViT-B at 224 px: 196 rows instead of 50,176 through a 768 -> 256 matmul).
// The rest stays per pixel. With one layer (widths [D, K]) this is the linear probe: a per-patch
// linear classifier, upsampled.
//
// Backward: from d(logits) through the per-pixel layers, the upsampling's transpose (prefix rows
// get 0), fc1, and into d(tokens) where the backbone trains.
import type { Tensor } from '../../gpu/tensor';
import { gelu, geluBackward } from '../../kernels/gelu';
import { upsampleBilinear, upsampleBilinearBackward } from '../../kernels/segmentation';
import type { PlanBuilder } from '../plan';
import { linearBackward, linearForward } from './linear';

export interface SegHeadShape {
  /** [D, hidden..., K]: the token width, each hidden layer's, and the outputs (1: binary). */
  widths: readonly number[];
  /** The patch grid (rows, columns). */
  grid: readonly [number, number];
  /** The image (height, width) the masks have. */
  size: readonly [number, number];
  /** Tokens before the grid in each image (class, registers): skipped. */
  prefix: number;
}

export interface SegHeadPlan {
  /** [B * Ho * Wo, K] per-pixel logits, pixels row-major. */
  readonly logits: Tensor;
  /** From d(logits) to the head's gradients, and d(tokens) into `dtokens` (written) when given. */
  backward(b: PlanBuilder, dlogits: Tensor, dtokens?: Tensor): void;
}

/** The head's parameters and their shapes, in forward order. */
export function segHeadShapes(name: string, widths: readonly number[]): [string, number[]][] {
  return widths.slice(1).flatMap((out, i): [string, number[]][] => [[`${name}.fc${i + 1}.weight`, [out, widths[i]!]], [`${name}.fc${i + 1}.bias`, [out]]]);
}

/** Plans the head on tokens [B, T, D]; every activation is kept, for the backward pass. */
export function segHeadForward(b: PlanBuilder, name: string, tokens: Tensor, s: SegHeadShape): SegHeadPlan {
  const [B, T, D] = tokens.shape as [number, number, number];
  const { widths, grid, size, prefix } = s;
  if (widths.length < 2 || widths[0] !== D) throw new Error(`${name}: widths [${widths.join(', ')}] must start at the tokens' width ${D} and end at the outputs`);
  const P = size[0] * size[1];
  const L = widths.length - 1;
  const fc = (i: number) => `${name}.fc${i + 1}`;
  // fc1 on the tokens (see above), then the upsampling: u is fc1's output at every pixel.
  const z1 = b.tensor([B, T, widths[1]!], `${name} fc1 tokens`);
  const u = b.tensor([B, P, widths[1]!], `${name} upsampled`);
  linearForward(b, fc(0), tokens, z1, { in: D, out: widths[1]! });
  b.add(upsampleBilinear(b.gpu, { x: z1, out: u, grid, size, prefix, label: `${name} upsample` }));
  // Per pixel: pre[i] is layer i's output (pre[0] = u); act[i - 1] = GELU(pre[i - 1]) is layer i's input.
  const pre: Tensor[] = [u];
  const act: Tensor[] = [];
  for (let i = 1; i < L; i++) {
    const a = b.tensor([B, P, widths[i]!], `${name} act ${i}`);
    b.add(gelu(b.gpu, { x: pre[i - 1]!, y: a, label: `${name} gelu ${i}` }));
    act.push(a);
    const out = b.tensor([B, P, widths[i + 1]!], `${name} fc${i + 1} out`);
    linearForward(b, fc(i), a, out, { in: widths[i]!, out: widths[i + 1]! });
    pre.push(out);
  }
  const logits = pre[L - 1]!;
  return {
    logits: { ...logits, shape: [B * P, widths[L]!] },
    backward(bb, dlogits, dtokens) {
      let dy = dlogits;
      for (let i = L - 1; i >= 1; i--) {
        const dact = bb.tensor([B, P, widths[i]!], `d ${name} act ${i}`);
        linearBackward(bb, fc(i), { x: act[i - 1]!, dy, dx: dact }, { in: widths[i]!, out: widths[i + 1]! });
        const dpre = bb.tensor([B, P, widths[i]!], `d ${name} pre ${i}`);
        bb.add(geluBackward(bb.gpu, { x: pre[i - 1]!, dy: dact, dx: dpre, label: `${name} gelu ${i} backward` }));
        dy = dpre;
      }
      const dz1 = bb.tensor([B, T, widths[1]!], `d ${name} fc1 tokens`);
      bb.add(upsampleBilinearBackward(bb.gpu, { dout: { ...dy, shape: [B, P, widths[1]!] }, dx: dz1, grid, size, prefix, label: `${name} upsample backward` }));
      linearBackward(bb, fc(0), { x: tokens, dy: dz1, dx: dtokens }, { in: D, out: widths[1]! });
    },
  };
}
