//! Depthwise convolution: every pass on the GPU against its CPU twin, at EfficientNet's window
//! shapes (3×3 and 5×5, strides 1 and 2) and odd sizes, in f32 and in f16.

mod common;
use autorep_kernels::params::DwConvParams;
use autorep_kernels::{cpu, launch};
use common::{as_stored, dtypes, gpu, rand_vec, rel_err, tolerance};

#[test]
fn depthwise_passes_match_cpu() {
    let Some(g) = gpu() else { return };
    let shapes = [
        (2, 3, 7, 9, 3, 1, 1),
        (3, 5, 11, 8, 5, 2, 2),
        (1, 4, 6, 6, 3, 2, 1),
        (2, 16, 14, 14, 5, 1, 2),
        (1, 2, 5, 5, 3, 1, 0),
    ];
    for (dtype, (n, c, h, w, k, stride, pad)) in
        dtypes(&g).into_iter().flat_map(|d| shapes.map(|s| (d, s)))
    {
        let p = DwConvParams {
            n,
            c,
            h,
            w,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        let (x, wt, dy) = (
            as_stored(rand_vec(1, p.x_len()), dtype),
            as_stored(rand_vec(2, p.w_len()), dtype),
            as_stored(rand_vec(3, p.y_len()), dtype),
        );
        let up = |v: &[f32]| g.upload_as(v, dtype).unwrap();
        let (bx, bw, bdy) = (up(&x), up(&wt), up(&dy));
        let check = |got: &autorep_kernels::GpuBuffer, want: Vec<f32>, what: &str| {
            let got = g.read_values(got, 0, want.len()).unwrap();
            let e = rel_err(&got, &as_stored(want, dtype));
            assert!(
                e <= tolerance(dtype, 1e-5),
                "{what} {dtype:?} {p:?}: rel err {e}"
            );
        };
        let out = |n: usize| g.alloc_elems(n, dtype).unwrap();
        let y = out(p.y_len());
        launch::dwconv2d_forward(&g, &p, &bx, &bw, &y).unwrap();
        let mut want = vec![0f32; p.y_len()];
        cpu::dwconv2d_forward(&p, &x, &wt, &mut want);
        check(&y, want, "forward");

        let dx = out(p.x_len());
        launch::dwconv2d_input_grad(&g, &p, &bdy, &bw, &dx).unwrap();
        let mut want = vec![0f32; p.x_len()];
        cpu::dwconv2d_input_grad(&p, &dy, &wt, &mut want);
        check(&dx, want, "input grad");

        let dw = out(p.w_len());
        launch::dwconv2d_weight_grad(&g, &p, &bx, &bdy, &dw).unwrap();
        let mut want = vec![0f32; p.w_len()];
        cpu::dwconv2d_weight_grad(&p, &x, &dy, &mut want);
        check(&dw, want, "weight grad");
    }
}

/// The depthwise convolution is the dense one with zero cross-channel weights.
#[test]
fn depthwise_equals_a_dense_convolution_with_a_diagonal_filter() {
    let (n, c, h, w, k, stride, pad) = (2, 3, 9, 7, 3, 2, 1);
    let p = DwConvParams {
        n,
        c,
        h,
        w,
        kh: k,
        kw: k,
        stride,
        pad,
    };
    let (x, wt) = (rand_vec(4, p.x_len()), rand_vec(5, p.w_len()));
    let mut dense_w = vec![0f64; c * c * k * k];
    for ch in 0..c {
        for t in 0..k * k {
            dense_w[(ch * c + ch) * k * k + t] = wt[ch * k * k + t] as f64;
        }
    }
    let cp = autorep_kernels::params::ConvParams {
        n,
        cin: c,
        h,
        w,
        cout: c,
        kh: k,
        kw: k,
        stride,
        pad,
    };
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let w64: Vec<f64> = wt.iter().map(|&v| v as f64).collect();
    let mut dense = vec![0f64; cp.y_len()];
    cpu::conv2d_forward(&cp, &x64, &dense_w, &mut dense);
    let mut depthwise = vec![0f64; p.y_len()];
    cpu::dwconv2d_forward(&p, &x64, &w64, &mut depthwise);
    for (a, b) in dense.iter().zip(&depthwise) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}
