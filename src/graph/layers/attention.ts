// timm's Attention, global multi-head self-attention over all tokens of an image:
// out [B, T, D] = proj(attention(qkv(x))), qkv D -> 3D (timm's packed q, k, v), proj D -> D, at
// `<name>.qkv`, `<name>.proj`. The token mixer of a ViT block (see block.ts).
import type { Tensor } from '../../gpu/tensor';
import { attention, attentionBackward } from '../../kernels/attention';
import type { PlanBuilder } from '../plan';
import { slot } from '../plan';
import type { TokenMixer } from './block';
import { linearBackward, linearForward } from './linear';

export interface AttentionActivations {
  qkv: Tensor;     // [B, T, 3D]
  attn: Tensor;    // [B, T, D] attention output, the projection's input
  lse: Tensor;     // [B, H, T] log-sum-exp of each score row
  probs?: Tensor;  // [B, H, T, T] when asked for
}

const SCRATCH = slot<AttentionActivations>('attention activations');
const GRADS = slot<{ dattn: Tensor; dqkv: Tensor; delta: Tensor }>('attention gradients');

/** Self-attention with `heads` heads as a block's token mixer. */
export function selfAttention(name: string, heads: number): TokenMixer<AttentionActivations> {
  return {
    forward(b, x, out, { keep, probs }) {
      const [B, T, D] = x.shape as [number, number, number];
      const make = (tag: string): AttentionActivations => ({
        qkv: b.tensor([B, T, 3 * D], `${tag} qkv`), attn: b.tensor([B, T, D], `${tag} attn`), lse: b.tensor([B, heads, T], `${tag} lse`),
      });
      const a = { ...(keep ? make(name) : b.shared(SCRATCH, [B, T, D, heads].join(), () => make('attention'))) };
      if (probs) a.probs = b.tensor([B, heads, T, T], `${name} probs`);
      linearForward(b, `${name}.qkv`, x, a.qkv, { in: D, out: 3 * D });
      b.add(attention(b.gpu, { qkv: a.qkv, out: a.attn, lse: a.lse, probs: a.probs, heads, label: `${name} attention` }));
      linearForward(b, `${name}.proj`, a.attn, out, { in: D, out: D });
      return { ...a, backward: (bb, g) => selfAttentionBackward(bb, name, heads, { ...a, x, ...g }) };
    },
  };
}

function selfAttentionBackward(b: PlanBuilder, name: string, heads: number, a: AttentionActivations & { x: Tensor; dout: Tensor; dx: Tensor; accumulateDx: boolean }): void {
  const [B, T, D] = a.x.shape as [number, number, number];
  const s = b.shared(GRADS, [B, T, D, heads].join(), () => ({
    dattn: b.tensor([B, T, D], 'd attn'), dqkv: b.tensor([B, T, 3 * D], 'd qkv'), delta: b.tensor([B, heads, T], 'attention delta'),
  }));
  linearBackward(b, `${name}.proj`, { x: a.attn, dy: a.dout, dx: s.dattn }, { in: D, out: D });
  b.add(attentionBackward(b.gpu, { qkv: a.qkv, out: a.attn, lse: a.lse, dout: s.dattn, delta: s.delta, dqkv: s.dqkv, heads, label: `${name} attention backward` }));
  linearBackward(b, `${name}.qkv`, { x: a.x, dy: s.dqkv, dx: a.dx, accumulateDx: a.accumulateDx }, { in: D, out: 3 * D });
}

