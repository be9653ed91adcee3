#![allow(dead_code)]
use autorep_kernels::Gpu;
use rand::{Rng, SeedableRng};

/// The test GPU, or None (with a message) where no adapter exists. CI sets
/// AUTOREP_REQUIRE_GPU=1 so that a missing driver fails instead of skipping.
pub fn gpu() -> Option<Gpu> {
    match Gpu::open() {
        Ok(g) => Some(g),
        Err(e) if std::env::var("AUTOREP_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("AUTOREP_REQUIRE_GPU=1 but no GPU: {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// A device whose f16 GEMMs and convolutions run on the tensor-core shaders, with that path
/// on: the test GPU where it has 16x16x16 f16 cooperative matrices, else the same adapter with
/// them emulated (`Gpu::open_emulating_coop`); None (with a message) where it has no f16.
pub fn coop_gpu() -> Option<Gpu> {
    let g = gpu()?;
    if g.report().coop_f16 {
        // The path may be off (AUTOREP_COOP=0); each test turns it on and off itself.
        g.set_coop_for_tests(true);
        let how = if g.report().coop_emulated {
            "emulated (AUTOREP_COOP=emulate)"
        } else {
            "its tensor cores"
        };
        eprintln!("{}: {how}", g.report().name);
        return Some(g);
    }
    if !g.report().f16 {
        eprintln!(
            "skipping the cooperative-matrix test: {} has no f16",
            g.report().name
        );
        return None;
    }
    let g = Gpu::open_emulating_coop().unwrap();
    g.set_coop_for_tests(true);
    assert!(g.report().coop_emulated && g.uses_coop_f16());
    eprintln!(
        "{} has no 16x16x16 f16->f32 cooperative matrices: emulating them",
        g.report().name
    );
    Some(g)
}

pub fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// max |got - want| / max |want|: the normwise relative error.
pub fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter()
        .zip(want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()))
        / scale
}

/// A square-kernel convolution of `n` images.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> autorep_kernels::params::ConvParams {
    autorep_kernels::params::ConvParams {
        n,
        cin,
        h,
        w,
        cout,
        kh: k,
        kw: k,
        stride,
        pad,
    }
}

/// The GPU's three passes of `p` on x, w and dy stored as `dtype`, into outputs that start as
/// garbage (every pass must write every element): (y, dx, dw), widened to f32.
pub fn gpu_conv_passes(
    g: &autorep_kernels::Gpu,
    p: &autorep_kernels::params::ConvParams,
    [x, w, dy]: [&[f32]; 3],
    dtype: autorep_kernels::Dtype,
) -> [Vec<f32>; 3] {
    use autorep_kernels::launch;
    let up = |v: &[f32]| g.upload_as(v, dtype).unwrap();
    let (bx, bw, bdy) = (up(x), up(w), up(dy));
    let junk = |n: usize| up(&vec![7.5f32; n]);
    let (by, bdx, bdw) = (junk(p.y_len()), junk(p.x_len()), junk(p.w_len()));
    // The split-K planes are f32 whatever the operands' type.
    let scratch_len = launch::conv2d_weight_grad_splits(g, p, dtype).unwrap().1;
    let scratch = g.upload(&vec![7.5f32; scratch_len]).unwrap();
    launch::conv2d_forward(g, p, &bx, &bw, &by).unwrap();
    launch::conv2d_input_grad(g, p, &bdy, &bw, &bdx).unwrap();
    launch::conv2d_weight_grad(g, p, &bx, &bdy, &scratch, &bdw).unwrap();
    [
        g.read_values(&by, 0, p.y_len()).unwrap(),
        g.read_values(&bdx, 0, p.x_len()).unwrap(),
        g.read_values(&bdw, 0, p.w_len()).unwrap(),
    ]
}

/// The CPU twin's three passes of `p`: (y, dx, dw) from x, w and dy.
pub fn conv_twins(
    p: &autorep_kernels::params::ConvParams,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 3] {
    use autorep_kernels::cpu;
    let (mut y, mut dx, mut dw) = (
        vec![0f32; p.y_len()],
        vec![0f32; p.x_len()],
        vec![0f32; p.w_len()],
    );
    cpu::conv2d_forward(p, x, w, &mut y);
    cpu::conv2d_input_grad(p, dy, w, &mut dx);
    cpu::conv2d_weight_grad(p, x, dy, &mut dw);
    [y, dx, dw]
}

/// The activation types the kernels can be tested in on `g`: f32, and f16 where the adapter
/// has SHADER_F16.
pub fn dtypes(g: &autorep_kernels::Gpu) -> Vec<autorep_kernels::Dtype> {
    use autorep_kernels::Dtype;
    if g.report().f16 {
        vec![Dtype::F32, Dtype::F16]
    } else {
        vec![Dtype::F32]
    }
}

/// `v` as a kernel of `dtype` reads it (rounded to f16 for f16).
pub fn as_stored(mut v: Vec<f32>, dtype: autorep_kernels::Dtype) -> Vec<f32> {
    if dtype == autorep_kernels::Dtype::F16 {
        autorep_kernels::round_to_f16(&mut v);
    }
    v
}

/// Relative error a kernel of `dtype` may show against its f32 twin: f32 rounding, or a few
/// f16 ulps (2⁻¹¹ each) where the kernel stores f16.
pub fn tolerance(dtype: autorep_kernels::Dtype, f32_tol: f32) -> f32 {
    match dtype {
        autorep_kernels::Dtype::F16 => 2e-3,
        _ => f32_tol,
    }
}

/// Random values already representable in f16.
pub fn halves(seed: u64, n: usize) -> Vec<f32> {
    as_stored(rand_vec(seed, n), autorep_kernels::Dtype::F16)
}

// ---- finite differences in f64 on the CPU twins

/// Central differences of `loss` at `x` in every coordinate.
pub fn numeric_grad(x: &[f64], mut loss: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    const H: f64 = 1e-5;
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            xp[i] = x[i] + H;
            let up = loss(&xp);
            xp[i] = x[i] - H;
            let down = loss(&xp);
            xp[i] = x[i];
            (up - down) / (2.0 * H)
        })
        .collect()
}

pub fn assert_grad(analytic: &[f64], numeric: &[f64], what: &str) {
    let scale = numeric.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    let err = analytic
        .iter()
        .zip(numeric)
        .fold(0f64, |m, (a, n)| m.max((a - n).abs()))
        / scale;
    assert!(err < 1e-4, "{what}: gradient rel err {err}");
}
