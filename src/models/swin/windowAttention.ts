// timm's WindowAttention inside a shifted-window block, as a block's token mixer (graph/layers/block.ts):
// the tokens [B, H*W, C] are rolled and cut into windows, attention runs per window with the
// relative position bias (and the shift mask) added to the scores, and the windows go back.
// Legend: B batch, nW windows per image, N tokens per window, C width, nh heads.
//   windows [B*nW, N, C] = partition(x)          qkv [B*nW, N, 3C]      attn [B*nW, N, C]
//   bias [planes, nh, N, N] = table[index] + mask  mixed [B*nW, N, C] = proj(attn) -> reverse -> out
// Backward: the same maps in reverse (partition of d(out), reverse of d(windows)), and the table's
// gradient from the attention scores' gradient, summed over windows and batch.
import type { Tensor } from '../../gpu/tensor';
import type { TokenMixer } from '../../graph/layers/block';
import { linearBackward, linearForward } from '../../graph/layers/linear';
import { slot, type PlanBuilder } from '../../graph/plan';
import { attention, attentionBackward } from '../../kernels/attention';
import { relativePositionBias, relativePositionBiasBackward, windowGrid, windowPartition, windowReverse, type WindowLayout } from '../../kernels/swin';

export interface WindowAttentionActivations {
  windows: Tensor;  // [B*nW, N, C] the mixer's input cut into windows
  bias: Tensor;     // [planes, nh, N, N]
  qkv: Tensor;      // [B*nW, N, 3C]
  attn: Tensor;     // [B*nW, N, C]
  lse: Tensor;      // [B*nW, nh, N]
  mixed: Tensor;    // [B*nW, N, C] projection output, before the windows go back
  probs?: Tensor;   // [B*nW, nh, N, N] when asked for
}

const SCRATCH = slot<WindowAttentionActivations>('window attention activations');
const GRADS = slot<{ dwindows: Tensor; dattn: Tensor; dqkv: Tensor; delta: Tensor; dscores: Tensor; dbias: Tensor }>('window attention gradients');

/** Window attention with `heads` heads at `name` (`layers.0.blocks.1.attn`) over a map cut as `layout` says. */
export function windowAttention(name: string, heads: number, layout: WindowLayout): TokenMixer<WindowAttentionActivations> {
  const { nW, N, planes } = windowGrid(layout);
  return {
    forward(b, x, out, { keep, probs }) {
      const [B, , C] = x.shape as [number, number, number];
      const BW = B * nW;
      const make = (tag: string): WindowAttentionActivations => ({
        windows: b.tensor([BW, N, C], `${tag} windows`), bias: b.tensor([planes, heads, N, N], `${tag} bias`), qkv: b.tensor([BW, N, 3 * C], `${tag} qkv`),
        attn: b.tensor([BW, N, C], `${tag} attn`), lse: b.tensor([BW, heads, N], `${tag} lse`), mixed: b.tensor([BW, N, C], `${tag} mixed`),
      });
      const a = { ...(keep ? make(name) : b.shared(SCRATCH, [B, C, heads, nW, N, planes].join(), () => make('window attention'))) };
      if (probs) a.probs = b.tensor([BW, heads, N, N], `${name} probs`);
      b.add(windowPartition(b.gpu, { x, windows: a.windows, layout, label: `${name} partition` }));
      b.add(relativePositionBias(b.gpu, { table: b.param(`${name}.relative_position_bias_table`), bias: a.bias, layout, label: `${name} bias` }));
      linearForward(b, `${name}.qkv`, a.windows, a.qkv, { in: C, out: 3 * C });
      b.add(attention(b.gpu, { qkv: a.qkv, bias: a.bias, out: a.attn, lse: a.lse, probs: a.probs, heads, label: `${name} attention` }));
      linearForward(b, `${name}.proj`, a.attn, a.mixed, { in: C, out: C });
      b.add(windowReverse(b.gpu, { windows: a.mixed, x: out, layout, label: `${name} reverse` }));
      return { ...a, backward: (bb, g) => windowAttentionBackward(bb, name, heads, layout, a, g) };
    },
  };
}

function windowAttentionBackward(b: PlanBuilder, name: string, heads: number, layout: WindowLayout, a: WindowAttentionActivations, g: { dout: Tensor; dx: Tensor; accumulateDx: boolean }): void {
  const [BW, N, C] = a.windows.shape as [number, number, number];
  const s = b.shared(GRADS, [BW, N, C, heads].join(), () => ({
    dwindows: b.tensor([BW, N, C], 'd windows'), dattn: b.tensor([BW, N, C], 'd window attn'), dqkv: b.tensor([BW, N, 3 * C], 'd window qkv'),
    delta: b.tensor([BW, heads, N], 'window attention delta'), dscores: b.tensor([BW, heads, N, N], 'd scores'), dbias: b.tensor([heads, N, N], 'd bias'),
  }));
  const dtable = b.grad(`${name}.relative_position_bias_table`);
  b.add(windowPartition(b.gpu, { x: g.dout, windows: s.dwindows, layout, label: `${name} partition backward` }));
  linearBackward(b, `${name}.proj`, { x: a.attn, dy: s.dwindows, dx: s.dattn }, { in: C, out: C });
  b.add(attentionBackward(b.gpu, {
    qkv: a.qkv, bias: a.bias, out: a.attn, lse: a.lse, dout: s.dattn, delta: s.delta, dqkv: s.dqkv, heads,
    dscores: dtable ? s.dscores : undefined, label: `${name} attention backward`,
  }));
  if (dtable) b.add(relativePositionBiasBackward(b.gpu, { dbias: s.dscores, dtable, window: layout.window, scratch: s.dbias, accumulate: true, label: `${name} bias backward` }));
  linearBackward(b, `${name}.qkv`, { x: a.windows, dy: s.dqkv, dx: s.dwindows }, { in: C, out: 3 * C });
  b.add(windowReverse(b.gpu, { windows: s.dwindows, x: g.dx, layout, accumulate: g.accumulateDx, label: `${name} reverse backward` }));
}
