// Element-wise comparison against a float64 reference: element i passes when
// |got - ref| <= atol + rtol * |ref| (NaN never passes). On failure the message gives the worst
// absolute and relative errors and the first mismatches, so a failing run says what went wrong.
import type { Tolerance } from '../tolerances';

export interface ErrorStats { maxAbs: number; maxRel: number; mismatches: number }

export function compare(got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): ErrorStats & { report: string } {
  if (got.length !== ref.length) throw new Error(`length ${got.length} differs from reference length ${ref.length}`);
  let maxAbs = 0;
  let maxRel = 0;
  let mismatches = 0;
  const lines: string[] = [];
  for (let i = 0; i < ref.length; i++) {
    const g = got[i]!;
    const r = ref[i]!;
    const abs = Math.abs(g - r);
    const rel = abs / Math.max(Math.abs(r), 1e-30);
    const ok = abs <= tol.atol + tol.rtol * Math.abs(r);
    if (Number.isFinite(abs)) {
      maxAbs = Math.max(maxAbs, abs);
      if (Math.abs(r) > tol.atol) maxRel = Math.max(maxRel, rel);
    }
    if (!ok) {
      mismatches++;
      if (lines.length < 10) lines.push(`  [${i}] got ${g}, expected ${r} (abs ${abs.toExponential(2)}, rel ${rel.toExponential(2)})`);
    }
  }
  const report = `max abs ${maxAbs.toExponential(2)}, max rel ${maxRel.toExponential(2)}, ${mismatches}/${ref.length} outside atol ${tol.atol} + rtol ${tol.rtol}`;
  return { maxAbs, maxRel, mismatches, report: mismatches ? `${report}\n${lines.join('\n')}` : report };
}

/** Throws with the comparison report when any element is outside tolerance. */
export function expectClose(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): ErrorStats {
  const r = compare(got, ref, tol);
  if (r.mismatches > 0) throw new Error(`${what}: ${r.report}`);
  return r;
}

/** Relative L2 error ||got - ref|| / ||ref||. */
export function relL2(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (got[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num / den);
}
