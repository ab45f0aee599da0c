// Counting correct predictions, for training steps and held-out evaluation alike.

/** The index of the largest value; the first of equal maxima. */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** How many of the first `n` rows of `logits` ([n, classes] or more) have their argmax at `labels[row]`. */
export function countCorrect(logits: Float32Array, classes: number, labels: ArrayLike<number>, n: number): number {
  let correct = 0;
  for (let b = 0; b < n; b++) if (argmax(logits.subarray(b * classes, (b + 1) * classes)) === labels[b]) correct++;
  return correct;
}
