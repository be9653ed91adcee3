use super::Real;
use crate::params::GemmParams;

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
