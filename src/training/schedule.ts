// Learning rate: linear warmup, then cosine decay to `minLr` (the DeiT / timm recipe).
export interface Schedule { baseLr: number; warmupSteps: number; totalSteps: number; minLr?: number }

/** Learning rate at optimizer step `step` (counting from 1). */
export function learningRate(s: Schedule, step: number): number {
  const min = s.minLr ?? 0;
  if (step <= s.warmupSteps) return (s.baseLr * step) / Math.max(1, s.warmupSteps);
  const t = Math.min(1, (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps));
  return min + 0.5 * (s.baseLr - min) * (1 + Math.cos(Math.PI * t));
}
