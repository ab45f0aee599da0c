// The JSON line `npm run classify` prints per image, the same from Chromium (page.ts) and Node (node.ts).
import type { ClassifyResult } from '../engine/engine';

export interface CliOutput {
  file: string;
  index?: number;
  top?: { index: number; label: string; prob: number }[];
  logits?: number[];
  error?: string;
}

export function output(file: string, r: ClassifyResult, withLogits: boolean, index?: number): CliOutput {
  return {
    file, ...(index !== undefined && { index }),
    top: r.top.map((p) => ({ index: p.index, label: p.label, prob: Number(p.prob.toFixed(6)) })),
    ...(withLogits && r.logits && { logits: Array.from(r.logits, (v) => Number(v.toPrecision(7))) }),
  };
}
