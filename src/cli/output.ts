// What `npm run classify` asks of each file and the JSON line it prints per image, the same from
// Chromium (page.ts, through the worker) and from Node (node.ts, the engine in-process).
import type { ClassifyOptions, ClassifyResult, InputSizeOption } from '../engine/engine';
import type { FeatureOptions, FeaturesResult } from '../engine/features';
import type { ImageSize } from '../graph/family';
import type { SafetensorsFile } from '../weights/safetensors';

export interface CliOutput {
  file: string;
  index?: number;
  top?: { index: number; label: string; prob: number }[];
  logits?: number[];
  /** With --features: what the head reads, then each block's map asked for with --blocks. */
  features?: number[];
  maps?: { block: number; normed: boolean; grid: [number, number]; dim: number; classTokens: number[]; registers: number[]; patches: number[] }[];
  error?: string;
}

/** What the script asks of every file. */
export interface CliRequest {
  top: number;
  logits: boolean;
  /** Images are preprocessed to this size (default: the model's). */
  size?: ImageSize;
  /** Features instead of classes: pooled, and the maps of `blocks` (none: the pooled alone). */
  features?: { blocks: number[]; norm: boolean };
}

/** The engine calls the script makes, on images of whatever kind the side decodes. */
export interface CliEngine<Image> {
  classify(images: Image[], options: ClassifyOptions & InputSizeOption): Promise<ClassifyResult[]>;
  classifyTensor(input: Float32Array, batch: number, size: ImageSize, options: ClassifyOptions): Promise<ClassifyResult[]>;
  features(images: Image[], options: FeatureOptions & InputSizeOption): Promise<FeaturesResult[]>;
  featuresTensor(input: Float32Array, batch: number, size: ImageSize, options: FeatureOptions): Promise<FeaturesResult[]>;
}

const numbers = (a: Float32Array) => Array.from(a, (v) => Number(v.toPrecision(7)));

export function output(file: string, r: ClassifyResult, withLogits: boolean, index?: number): CliOutput {
  return {
    file, ...(index !== undefined && { index }),
    top: r.top.map((p) => ({ index: p.index, label: p.label, prob: Number(p.prob.toFixed(6)) })),
    ...(withLogits && r.logits && { logits: numbers(r.logits) }),
  };
}

function featuresOutput(file: string, r: FeaturesResult, withMaps: boolean, index?: number): CliOutput {
  return {
    file, ...(index !== undefined && { index }),
    features: numbers(r.pooled!),
    ...(withMaps && {
      maps: r.maps.map((m) => ({ ...m, classTokens: numbers(m.classTokens), registers: numbers(m.registers), patches: numbers(m.patches) })),
    }),
  };
}

/** A `.safetensors` input file's `input` tensor (N, C, H, W), with its batch and size. */
export function tensorInput(st: SafetensorsFile): { tensor: Float32Array; batch: number; size: ImageSize } {
  const entry = st.entries.get('input');
  if (!entry) throw new Error('no tensor named "input" in it');
  if (entry.shape.length !== 4) throw new Error(`input has shape [${entry.shape.join(', ')}], expected (N, C, H, W)`);
  const [N, , H, W] = entry.shape as [number, number, number, number];
  return { tensor: st.get('input'), batch: N, size: H === W ? H : [H, W] };
}

/**
 * Classes or features of a batch of images, or of a tensor, as output lines: `name(i)` names
 * image i; a tensor's lines carry the image's index in it.
 */
export async function answer<Image>(
  engine: CliEngine<Image>, request: CliRequest, input: { images: Image[] } | { tensor: Float32Array; batch: number; size: ImageSize }, name: (i: number) => string,
): Promise<CliOutput[]> {
  const index = (i: number) => ('tensor' in input ? i : undefined);
  const f = request.features;
  if (f) {
    const options = { blocks: f.blocks.length ? f.blocks : [-1], norm: f.norm };
    const results = 'images' in input
      ? await engine.features(input.images, { ...options, imageSize: request.size })
      : await engine.featuresTensor(input.tensor, input.batch, input.size, options);
    return results.map((r, i) => featuresOutput(name(i), r, f.blocks.length > 0, index(i)));
  }
  const options = { topK: request.top, logits: request.logits };
  const results = 'images' in input
    ? await engine.classify(input.images, { ...options, imageSize: request.size })
    : await engine.classifyTensor(input.tensor, input.batch, input.size, options);
  return results.map((r, i) => output(name(i), r, request.logits, index(i)));
}
