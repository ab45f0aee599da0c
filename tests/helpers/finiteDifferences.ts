// Finite differences, the check every backward pass is held to.

/** The step of the central differences (float64 throughout). */
export const FD_EPS = 1e-6;

/**
 * Central differences of loss() with respect to the elements `at` of x (every element by default),
 * each perturbed in place, then restored.
 */
export function numericGrad(x: Float64Array, loss: () => number, at: readonly number[] = Array.from(x.keys())): Float64Array {
  return Float64Array.from(at, (i) => {
    const x0 = x[i]!;
    x[i] = x0 + FD_EPS;
    const up = loss();
    x[i] = x0 - FD_EPS;
    const down = loss();
    x[i] = x0;
    return (up - down) / (2 * FD_EPS);
  });
}
