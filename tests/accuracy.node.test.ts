import { describe, expect, it } from 'vitest';
import { argmax, countCorrect } from '../src/training/accuracy';

describe('argmax and countCorrect', () => {
  it('argmax takes the first of equal maxima', () => {
    expect(argmax([0.5, 2, -1, 2])).toBe(1);
    expect(argmax([3])).toBe(0);
    expect(argmax(new Float32Array([-4, -3, -9]))).toBe(1);
  });

  it('counts rows whose argmax is the label, reading only the first n rows', () => {
    // 4 rows of 3 classes; argmaxes 2, 0, 1, 1. The fourth row is padding past n.
    const logits = new Float32Array([0, 1, 5, 7, 1, 1, 0, 3, 2, 0, 9, 0]);
    expect(countCorrect(logits, 3, [2, 0, 1, 1], 3)).toBe(3);
    expect(countCorrect(logits, 3, [2, 1, 0], 3)).toBe(1);
    expect(countCorrect(logits, 3, new Int32Array([0, 0, 1, 1]), 4)).toBe(3);
    expect(countCorrect(logits, 3, [], 0)).toBe(0);
  });
});
