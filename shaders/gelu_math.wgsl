// Exact GELU, x * Phi(x), as timm's nn.GELU: 0.5 * x * erfc(-x / sqrt(2)).
// WGSL has no erf. erfc below is the Chebyshev fit of Numerical Recipes (erfcc): relative error
// under 1.2e-7 over the whole real line. Going through erfc instead of 1 + erf keeps full
// relative precision in the negative tail, where 1 + erf(x) would cancel to nothing.
// Included by gelu.wgsl and by matmul.wgsl (the fused bias+GELU epilogue).

fn erfc_approx(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
      t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
      t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(poly);
  return select(2.0 - r, r, x >= 0.0);
}

const INV_SQRT2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

fn gelu(x: f32) -> f32 {
  return 0.5 * x * erfc_approx(-x * INV_SQRT2);
}

// d/dx [x * Phi(x)] = Phi(x) + x * phi(x)
fn gelu_grad(x: f32) -> f32 {
  return 0.5 * erfc_approx(-x * INV_SQRT2) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
}
