// What the engine checks of an input before any GPU work, and of the logits after the run: the
// work one image asks for (tokens, see MAX_TOKENS_PER_IMAGE) and values that are not finite.
import type { AttentionLayout, ImageSize, ModelConfig } from '../graph/family';
import { tokenLimitProblem } from '../limits';
import { describeValue, firstNonFinite } from '../weights/finite';

/**
 * Throws "input: ..." when an NCHW batch [batch, C, H, W] asks for more tokens per image than
 * MAX_TOKENS_PER_IMAGE, or holds a NaN or an infinity (named by image, channel, row and column).
 */
export function checkInput(input: Float32Array, imageSize: ImageSize, config: ModelConfig, layout: AttentionLayout): void {
  const tooMany = tokenLimitProblem(imageSize, layout);
  if (tooMany) throw new Error(`input: ${tooMany}`);
  const at = firstNonFinite(input);
  if (at >= 0) {
    const [H, W] = typeof imageSize === 'number' ? [imageSize, imageSize] : imageSize;
    const plane = H * W;
    const per = config.inChannels * plane;
    const [image, channel, row, column] = [Math.floor(at / per), Math.floor((at % per) / plane), Math.floor((at % plane) / W), at % W];
    throw new Error(`input: image ${image} holds ${describeValue(input[at]!)} at channel ${channel}, row ${row}, column ${column}`);
  }
}

/**
 * The last guard: finite weights and inputs can still overflow float32 inside the model. Logits
 * that are not finite would show as probabilities of NaN and a meaningless top-k; they are
 * reported instead. `logits` is [batch, classes]; `first` numbers the images of this chunk.
 */
export function checkLogits(logits: Float32Array, classes: number, first = 0): void {
  const at = firstNonFinite(logits);
  if (at >= 0) {
    throw new Error(`output: the logits of image ${first + Math.floor(at / classes)} hold ${describeValue(logits[at]!)} at class ${at % classes}: the model overflows float32 on this input`);
  }
}
