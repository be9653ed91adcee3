use super::Real;

/// Where one operand lives: element offset and (row, column, batch) strides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strided {
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
    pub bs: usize,
}

impl Strided {
    /// A stored row-major `rows x cols` matrix, optionally read transposed (as `cols x rows`),
    /// batches packed densely.
    pub fn matrix(rows: usize, cols: usize, transposed: bool) -> Self {
        if transposed {
            Strided {
                off: 0,
                rs: 1,
                cs: cols,
                bs: rows * cols,
            }
        } else {
            Strided {
                off: 0,
                rs: cols,
                cs: 1,
                bs: rows * cols,
            }
        }
    }

    fn last_index(&self, rows: usize, cols: usize, batch: usize) -> usize {
        self.off
            + (rows.max(1) - 1) * self.rs
            + (cols.max(1) - 1) * self.cs
            + (batch.max(1) - 1) * self.bs
    }
}

/// C[b] = alpha * A[b]·B[b] (+ bias[col]) (+ C[b] when `accumulate`); A is m x k, B is k x n,
/// C is m x n row-major with row stride `c.rs` (c.cs must be 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemmParams {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub a: Strided,
    pub b: Strided,
    pub c: Strided,
    pub bias_off: Option<usize>,
    pub accumulate: bool,
    pub alpha: f32,
}

impl GemmParams {
    /// A plain `op(A)·op(B)` with dense row-major operands.
    pub fn dense(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> Self {
        let a = if trans_a {
            Strided::matrix(k, m, true)
        } else {
            Strided::matrix(m, k, false)
        };
        let b = if trans_b {
            Strided::matrix(n, k, true)
        } else {
            Strided::matrix(k, n, false)
        };
        GemmParams {
            m,
            n,
            k,
            batch: 1,
            a,
            b,
            c: Strided::matrix(m, n, false),
            bias_off: None,
            accumulate: false,
            alpha: 1.0,
        }
    }

    /// Elements each operand must hold for this call to stay in bounds: (a, b, c).
    pub fn extents(&self) -> (usize, usize, usize) {
        (
            self.a.last_index(self.m, self.k, self.batch) + 1,
            self.b.last_index(self.k, self.n, self.batch) + 1,
            self.c.last_index(self.m, self.n, self.batch) + 1,
        )
    }

    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64 * self.batch as f64
    }
}

pub fn gemm<T: Real>(p: &GemmParams, a: &[T], b: &[T], bias: &[T], c: &mut [T]) {
    let _p = super::profile::span("gemm");
    let (ea, eb, ec) = p.extents();
    assert!(
        a.len() >= ea && b.len() >= eb && c.len() >= ec,
        "gemm operand too small"
    );
    assert_eq!(p.c.cs, 1, "gemm: C must be row-major");
    if let Some(off) = p.bias_off {
        assert!(bias.len() >= off + p.n, "gemm bias too small");
    }
    let beta = if p.accumulate { T::one() } else { T::zero() };
    let alpha = T::from_f32(p.alpha).unwrap();
    for bi in 0..p.batch {
        let (ao, bo, co) = (
            p.a.off + bi * p.a.bs,
            p.b.off + bi * p.b.bs,
            p.c.off + bi * p.c.bs,
        );
        if p.m == 0 || p.n == 0 {
            continue;
        }
        // SAFETY: the asserts above prove every strided index is inside a, b and c.
        unsafe {
            T::gemm_raw(
                p.m,
                p.k,
                p.n,
                alpha,
                a.as_ptr().add(ao),
                p.a.rs as isize,
                p.a.cs as isize,
                b.as_ptr().add(bo),
                p.b.rs as isize,
                p.b.cs as isize,
                beta,
                c.as_mut_ptr().add(co),
                p.c.rs as isize,
                1,
            );
        }
        if let Some(off) = p.bias_off {
            for r in 0..p.m {
                for j in 0..p.n {
                    let v = &mut c[co + r * p.c.rs + j];
                    *v = *v + bias[off + j];
                }
            }
        }
    }
}
