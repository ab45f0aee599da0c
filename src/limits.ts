// The bounds one input may ask of the engine, in one place. Each is checked before the work it
// bounds starts (no GPU work, no decoding, no download), and the message names the limit.
// Constants only, no imports: every layer may read them.

/**
 * Tokens one image may make (patches + class/distillation tokens) where every token attends to
 * every other (ViT, DeiT). Attention is quadratic in tokens: a forward pass at 16,385 tokens
 * (2048 px at patch 16) ran past two minutes on software WebGPU and needs 1 GiB per head for a
 * probability map. 4,096 leaves room for every standard size: ViT/16 at 448 px (785), ViT/14 at
 * 518 px with registers as DINOv2 (1,374), ViT/8 at 384 px (2,305), ViT/16 at 1008 px (3,970).
 */
export const MAX_TOKENS_PER_IMAGE = 4096;

/**
 * Tokens of the first stage where attention stays inside windows (Swin): the work grows linearly
 * with them, so four times as many bound about the same work. Room for Swin-B at 384 px (9,216)
 * and Swin-T at 512 px (16,384).
 */
export const MAX_WINDOWED_TOKENS_PER_IMAGE = 4 * MAX_TOKENS_PER_IMAGE;

/** How an image becomes tokens: the first block's patch grid, the tokens before it, the patch side. */
export interface TokenLayout { grid: readonly [number, number]; prefixTokens: number; patch: number; windowed: boolean }

/** The message for an image size over the token limit, or undefined when it fits. */
export function tokenLimitProblem(imageSize: number | readonly [number, number], layout: TokenLayout): string | undefined {
  const [H, W] = typeof imageSize === 'number' ? [imageSize, imageSize] : imageSize;
  const [gh, gw] = layout.grid;
  const tokens = gh * gw + layout.prefixTokens;
  const limit = layout.windowed ? MAX_WINDOWED_TOKENS_PER_IMAGE : MAX_TOKENS_PER_IMAGE;
  if (tokens <= limit) return undefined;
  const prefix = layout.prefixTokens ? ` + ${layout.prefixTokens}` : '';
  return `a ${H}x${W} image makes ${formatCount(tokens)} tokens (${gh}x${gw} patches of ${layout.patch} px${prefix}), over the limit of ${formatCount(limit)} tokens per image${layout.windowed ? ' for windowed attention' : ''}`;
}

/**
 * Pixels an image file may declare in its header (16384 x 16384: 1 GiB as RGBA). Images up to
 * this are decoded and downscaled to MAX_IMAGE_PIXELS (src/image/preprocess.ts); larger ones are
 * refused before the decoder allocates anything (a few kilobytes of PNG can declare 100000 x 100000).
 */
export const MAX_DECODED_PIXELS = 16384 * 16384;

/** 1234567 -> "1,234,567" (the same in every locale, for exact messages). */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A byte count for a person: "512 bytes", "4.0 KiB (4,096 bytes)", "3.0 GiB (3,221,225,472 bytes)". */
export function formatBytes(n: number): string {
  const exact = `${formatCount(n)} bytes`;
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size) return `${(n / size).toFixed(1)} ${unit} (${exact})`;
  }
  return exact;
}
