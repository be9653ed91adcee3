//! Operand layouts and the shape of a GEMM.

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

    pub(crate) fn last_index(&self, rows: usize, cols: usize, batch: usize) -> usize {
        self.off
            + (rows.max(1) - 1) * self.rs
            + (cols.max(1) - 1) * self.cs
            + (batch.max(1) - 1) * self.bs
    }
}

/// C\[b\] = alpha * A\[b\]·B\[b\] (+ bias\[col\]) (+ C\[b\] when `accumulate`); A is m x k, B is k x n,
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
