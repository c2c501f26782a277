//! Small dense f64 kernels on row-major d x d matrices: Cholesky, triangular inverses, packed triangles.
//!
//! Every covariance factorisation runs here, on the host, in f64 — for every backend.

/// Index of entry (i, j), i <= j, of a row-major packed upper triangle of a d x d matrix.
///
/// The GPU reduction (`shaders/reduce.wgsl`) packs its second moments in the same order.
#[inline]
pub fn packed_index(i: usize, j: usize, d: usize) -> usize {
    debug_assert!(i <= j && j < d);
    i * d - i * (i + 1) / 2 + j
}

/// Length of a packed upper triangle of a d x d matrix.
#[inline]
pub fn packed_len(d: usize) -> usize {
    d * (d + 1) / 2
}

/// Lower Cholesky factor L of a symmetric matrix `a` (A = L·Lᵀ), written to `l`.
/// Returns false if a pivot is not positive and finite (A is not positive definite).
pub fn cholesky_lower(a: &[f64], d: usize, l: &mut [f64]) -> bool {
    l[..d * d].fill(0.0);
    for j in 0..d {
        let mut s = a[j * d + j];
        for p in 0..j {
            s -= l[j * d + p] * l[j * d + p];
        }
        if !(s > 0.0 && s.is_finite()) {
            return false;
        }
        let ljj = s.sqrt();
        l[j * d + j] = ljj;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for p in 0..j {
                s -= l[i * d + p] * l[j * d + p];
            }
            l[i * d + j] = s / ljj;
        }
    }
    true
}

/// The precision's upper Cholesky factor U = (L⁻¹)ᵀ from a covariance's lower factor L, so that
/// Σ⁻¹ = U·Uᵀ — scikit-learn's `precisions_cholesky_` for 'full' and 'tied'.
pub fn precision_factor_from_cholesky(l: &[f64], d: usize, u: &mut [f64]) {
    u[..d * d].fill(0.0);
    // Solve L·X = I column by column (forward substitution); U = Xᵀ, so U[j][i] = X[i][j].
    for c in 0..d {
        for i in c..d {
            let mut s = if i == c { 1.0 } else { 0.0 };
            for p in c..i {
                s -= l[i * d + p] * u[c * d + p];
            }
            u[c * d + i] = s / l[i * d + i];
        }
    }
}

/// An upper-triangular U with P = U·Uᵀ, for a symmetric positive definite P (a "reverse" Cholesky,
/// from the last row up). Returns false if P is not positive definite.
pub fn upper_factor(p: &[f64], d: usize, u: &mut [f64]) -> bool {
    u[..d * d].fill(0.0);
    for j in (0..d).rev() {
        let mut s = p[j * d + j];
        for q in j + 1..d {
            s -= u[j * d + q] * u[j * d + q];
        }
        if !(s > 0.0 && s.is_finite()) {
            return false;
        }
        let ujj = s.sqrt();
        u[j * d + j] = ujj;
        for i in 0..j {
            let mut s = p[i * d + j];
            for q in j + 1..d {
                s -= u[i * d + q] * u[j * d + q];
            }
            u[i * d + j] = s / ujj;
        }
    }
    true
}

/// The covariance Σ = (U·Uᵀ)⁻¹ = U⁻ᵀ·U⁻¹ from an upper-triangular precision factor U.
/// `scratch` holds d·d values.
pub fn covariance_from_precision_factor(u: &[f64], d: usize, cov: &mut [f64], scratch: &mut [f64]) {
    // V = U⁻¹ (upper triangular), by back substitution on U·V = I.
    let v = &mut scratch[..d * d];
    v.fill(0.0);
    for c in 0..d {
        for i in (0..=c).rev() {
            let mut s = if i == c { 1.0 } else { 0.0 };
            for p in i + 1..=c {
                s -= u[i * d + p] * v[p * d + c];
            }
            v[i * d + c] = s / u[i * d + i];
        }
    }
    // Σ[i][j] = Σ_p V[p][i]·V[p][j], with V upper triangular so p <= min(i, j).
    for i in 0..d {
        for j in i..d {
            let s: f64 = (0..=i).map(|p| v[p * d + i] * v[p * d + j]).sum();
            cov[i * d + j] = s;
            cov[j * d + i] = s;
        }
    }
}

/// P = U·Uᵀ for a square factor U.
pub fn gram_of_factor(u: &[f64], d: usize, out: &mut [f64]) {
    for i in 0..d {
        for j in 0..d {
            out[i * d + j] = (0..d).map(|p| u[i * d + p] * u[j * d + p]).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-conditioned SPD matrix built by hand: A = B·Bᵀ + d·I.
    fn spd(d: usize) -> Vec<f64> {
        let b: Vec<f64> = (0..d * d).map(|i| ((i * 7 + 3) % 11) as f64 / 5.0 - 1.0).collect();
        let mut a = vec![0.0; d * d];
        gram_of_factor(&b, d, &mut a);
        for i in 0..d {
            a[i * d + i] += d as f64;
        }
        a
    }

    /// The largest absolute difference, a NaN counting as ∞ (`f64::max` would drop it).
    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .map(|r| if r.is_nan() { f64::INFINITY } else { r })
            .fold(0.0, f64::max)
    }

    #[test]
    fn packed_index_enumerates_the_upper_triangle_in_row_order() {
        let d = 5;
        let mut expect = 0;
        for i in 0..d {
            for j in i..d {
                assert_eq!(packed_index(i, j, d), expect);
                expect += 1;
            }
        }
        assert_eq!(expect, packed_len(d));
    }

    #[test]
    fn factors_reproduce_their_matrices() {
        for d in [1, 2, 5, 9] {
            let a = spd(d);
            // Outputs start as garbage: every entry, zeros above the diagonal too, is written.
            let (mut l, mut u, mut back, mut s) = (
                vec![f64::NAN; d * d],
                vec![f64::NAN; d * d],
                vec![f64::NAN; d * d],
                vec![f64::NAN; d * d],
            );
            assert!(cholesky_lower(&a, d, &mut l));
            gram_of_factor(&l, d, &mut back);
            // Cholesky is backward stable: residual ~ d·eps·‖A‖ (‖A‖ < 30 here).
            assert!(max_abs_diff(&back, &a) < 1e-12, "L·Lᵀ != A at d={d}");

            // U = L⁻ᵀ: then U·Uᵀ·A = I.
            precision_factor_from_cholesky(&l, d, &mut u);
            gram_of_factor(&u, d, &mut back);
            let mut prod = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    prod[i * d + j] = (0..d).map(|p| back[i * d + p] * a[p * d + j]).sum();
                }
            }
            let eye: Vec<f64> = (0..d * d).map(|i| if i % (d + 1) == 0 { 1.0 } else { 0.0 }).collect();
            assert!(max_abs_diff(&prod, &eye) < 1e-12, "U·Uᵀ·A != I at d={d}");
            let assert_upper = |u: &[f64], what: &str| {
                for i in 1..d {
                    for j in 0..i {
                        assert_eq!(u[i * d + j], 0.0, "{what} must be upper triangular (d={d})");
                    }
                }
            };
            assert_upper(&u, "U");

            // The reverse factor of the precision, and the covariance back from it.
            let p = back.clone();
            u.fill(f64::NAN);
            assert!(upper_factor(&p, d, &mut u));
            gram_of_factor(&u, d, &mut back);
            assert!(max_abs_diff(&back, &p) < 1e-12, "U·Uᵀ != P at d={d}");
            assert_upper(&u, "the reverse factor");
            let mut cov = vec![0.0; d * d];
            covariance_from_precision_factor(&u, d, &mut cov, &mut s);
            assert!(max_abs_diff(&cov, &a) < 1e-11, "(U·Uᵀ)⁻¹ != A at d={d}");
        }
    }

    #[test]
    fn a_diagonal_factor_is_the_correctly_rounded_square_root() {
        // Each pivot's entry is √pivot itself (not pivot/√pivot, which can differ in the last
        // bit: 2/√2 is one ulp below √2).
        let mut l = [f64::NAN; 4];
        assert!(cholesky_lower(&[2.0, 0.0, 0.0, 3.0], 2, &mut l));
        assert_eq!(l, [2f64.sqrt(), 0.0, 0.0, 3f64.sqrt()]);
    }

    #[test]
    fn indefinite_matrices_are_rejected() {
        let a = [1.0, 2.0, 2.0, 1.0]; // eigenvalues 3 and -1
        let mut l = [0.0; 4];
        assert!(!cholesky_lower(&a, 2, &mut l));
        assert!(!upper_factor(&a, 2, &mut l));
        // A zero pivot, as a NaN or infinite one, is not positive definite.
        for bad in [0.0, f64::NAN, f64::INFINITY] {
            assert!(!cholesky_lower(&[bad], 1, &mut l), "{bad}");
            assert!(!upper_factor(&[bad], 1, &mut l), "{bad}");
        }
    }
}
