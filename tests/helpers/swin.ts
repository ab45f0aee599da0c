// A timm-named Swin checkpoint renamed as Hugging Face's SwinForImageClassification stores it,
// written from the names in transformers' modeling_swin.py (not from our mapping, which the tests
// check against this): separate query, key and value, the patch merging at the end of the
// previous stage, and the relative position index buffers Hugging Face keeps.
import type { HostWeights } from '../../src/graph/model';

export function toSwinHuggingFace(timm: HostWeights): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const put = (name: string, t: { shape: readonly number[]; data: Float32Array }) => out.set(name, { shape: [...t.shape], data: t.data });
  for (const [name, t] of timm) {
    let m: RegExpExecArray | null;
    if ((m = /^patch_embed\.proj\.(weight|bias)$/.exec(name))) put(`swin.embeddings.patch_embeddings.projection.${m[1]}`, t);
    else if ((m = /^patch_embed\.norm\.(weight|bias)$/.exec(name))) put(`swin.embeddings.norm.${m[1]}`, t);
    else if ((m = /^layers\.(\d+)\.downsample\.(.+)$/.exec(name))) put(`swin.encoder.layers.${Number(m[1]) - 1}.downsample.${m[2]}`, t);
    else if ((m = /^norm\.(weight|bias)$/.exec(name))) put(`swin.layernorm.${m[1]}`, t);
    else if ((m = /^head\.fc\.(weight|bias)$/.exec(name))) put(`classifier.${m[1]}`, t);
    else if ((m = /^layers\.(\d+)\.blocks\.(\d+)\.(.+)$/.exec(name))) {
      const hf = `swin.encoder.layers.${m[1]}.blocks.${m[2]}`;
      const rest = m[3]!;
      const simple: Record<string, string> = {
        'norm1.weight': 'layernorm_before.weight', 'norm1.bias': 'layernorm_before.bias',
        'attn.relative_position_bias_table': 'attention.self.relative_position_bias_table',
        'attn.proj.weight': 'attention.output.dense.weight', 'attn.proj.bias': 'attention.output.dense.bias',
        'norm2.weight': 'layernorm_after.weight', 'norm2.bias': 'layernorm_after.bias',
        'mlp.fc1.weight': 'intermediate.dense.weight', 'mlp.fc1.bias': 'intermediate.dense.bias',
        'mlp.fc2.weight': 'output.dense.weight', 'mlp.fc2.bias': 'output.dense.bias',
      };
      if (simple[rest]) put(`${hf}.${simple[rest]}`, t);
      else if (rest === 'attn.qkv.weight' || rest === 'attn.qkv.bias') {
        const kind = rest.endsWith('weight') ? 'weight' : 'bias';
        const third = t.data.length / 3;
        const shape = [t.shape[0]! / 3, ...t.shape.slice(1)];
        ['query', 'key', 'value'].forEach((part, i) => put(`${hf}.attention.self.${part}.${kind}`, { shape, data: t.data.slice(i * third, (i + 1) * third) }));
        if (kind === 'weight') {
          const N = Math.sqrt(timm.get(`layers.${m[1]}.blocks.${m[2]}.attn.relative_position_bias_table`)!.shape[0]!);
          const window = (N + 1) / 2;
          put(`${hf}.attention.self.relative_position_index`, { shape: [window ** 2, window ** 2], data: new Float32Array(window ** 4) });
        }
      } else throw new Error(`no Hugging Face name for ${name}`);
    } else throw new Error(`no Hugging Face name for ${name}`);
  }
  return out;
}
