//! Convolution: GPU passes against the CPU twin, and the CPU twin against a direct loop.

mod common;
use autorep_kernels::{cpu, launch, params::ConvParams, Dtype};
use common::{conv, conv_twins, gpu, rand_vec, rel_err};

fn shapes() -> Vec<ConvParams> {
    let c = conv;
    vec![
        c(1, 1, 1, 1, 1, 1, 1, 0),
        c(2, 3, 7, 9, 5, 3, 1, 1),
        c(3, 5, 9, 7, 7, 3, 2, 1),
        c(2, 7, 8, 8, 13, 1, 2, 0),
        c(1, 3, 11, 10, 4, 5, 1, 2),
        c(2, 4, 9, 9, 3, 5, 2, 0),
        c(5, 17, 6, 5, 65, 3, 1, 1),
        c(1, 2, 5, 5, 3, 3, 2, 0),
    ]
}

/// The definition, one output at a time (the oracle for the im2col twin).
fn direct(p: &ConvParams, x: &[f64], w: &[f64]) -> Vec<f64> {
    let (oh, ow) = (p.oh(), p.ow());
    let mut y = vec![0.0; p.y_len()];
    for n in 0..p.n {
        for co in 0..p.cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0;
                    for ci in 0..p.cin {
                        for ky in 0..p.kh {
                            for kx in 0..p.kw {
                                let iy = (oy * p.stride + ky) as isize - p.pad as isize;
                                let ix = (ox * p.stride + kx) as isize - p.pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w
                                {
                                    acc += x[((n * p.cin + ci) * p.h + iy as usize) * p.w
                                        + ix as usize]
                                        * w[((co * p.cin + ci) * p.kh + ky) * p.kw + kx];
                                }
                            }
                        }
                    }
                    y[((n * p.cout + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn cpu_twin_matches_the_definition_and_its_adjoints() {
    shapes().iter().for_each(twin_matches_the_definition);
}

/// Images whose columns exceed the twin's per-GEMM budget (4 MB; here 4.6 MB each in f64) go
/// one GEMM each, the weight gradient accumulating over an item's GEMMs.
#[test]
fn cpu_twin_splits_items_into_gemms_within_the_column_budget() {
    let p = ConvParams {
        n: 6,
        cin: 40,
        h: 40,
        w: 40,
        cout: 5,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    };
    twin_matches_the_definition(&p);
}

fn twin_matches_the_definition(p: &ConvParams) {
    let p = *p;
    {
        let x = f64s(&rand_vec(1, p.x_len()));
        let w = f64s(&rand_vec(2, p.w_len()));
        let dy = f64s(&rand_vec(3, p.y_len()));
        let mut y = vec![0.0; p.y_len()];
        cpu::conv2d_forward(&p, &x, &w, &mut y);
        let want = direct(&p, &x, &w);
        let err = y
            .iter()
            .zip(&want)
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < 1e-12, "{p:?} forward {err}");
        // <dy, conv(x, w)> = <dx, x> = <dw, w>: both backward passes are exact adjoints.
        let (mut dx, mut dw) = (vec![0.0; p.x_len()], vec![0.0; p.w_len()]);
        cpu::conv2d_input_grad(&p, &dy, &w, &mut dx);
        cpu::conv2d_weight_grad(&p, &x, &dy, &mut dw);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
        let lhs = dot(&dy, &want);
        assert!(
            (lhs - dot(&dx, &x)).abs() < 1e-9 * lhs.abs().max(1.0),
            "{p:?} input grad"
        );
        assert!(
            (lhs - dot(&dw, &w)).abs() < 1e-9 * lhs.abs().max(1.0),
            "{p:?} weight grad"
        );
    }
}

/// The shapes of `shapes()` mostly run on the launcher's 64- and 32-row tiles and (input grads
/// with Cin <= 4) the direct input-gradient kernel; these also reach the 256-row tile in every
/// pass (forward and input grad with several row tiles, stride-2 phases of unequal size, a
/// weight grad with 425 taps over two column tiles), the direct kernel at strides 1 and 2, and
/// the tiled input grad with one input channel and 5x5 taps (too many taps for the direct one).
fn large_and_narrow_shapes() -> Vec<ConvParams> {
    let c = conv;
    vec![
        c(3, 5, 13, 13, 70, 3, 1, 1),
        c(6, 6, 17, 17, 9, 3, 2, 1),
        c(2, 17, 12, 10, 66, 5, 2, 2),
        c(2, 3, 15, 15, 8, 3, 2, 1),
        c(3, 3, 16, 16, 16, 3, 1, 1),
        c(2, 1, 11, 9, 4, 5, 1, 2),
        c(1, 4, 33, 35, 6, 3, 1, 0),
        c(2, 3, 9, 9, 5, 1, 2, 0),
        c(3, 6, 11, 10, 70, 1, 2, 0),
    ]
}

#[test]
fn gpu_passes_match_cpu() {
    let Some(g) = gpu() else { return };
    passes_match_cpu(&g, shapes().into_iter().chain(large_and_narrow_shapes()));
}

/// The split-K paths hardware GPUs take when a pass's output is small (forced here through the
/// test hook on whatever adapter runs the tests): forward and input grad (all stride phases
/// times several splits) go through partial planes and a reduction; the weight grad uses more
/// splits than K_PER_SPLIT alone gives.
#[test]
fn split_k_passes_match_cpu() {
    let Some(g) = gpu() else { return };
    g.set_split_target_for_tests(1 << 22);
    let c = conv;
    let split = [
        c(6, 40, 9, 7, 40, 3, 1, 1),
        c(9, 70, 12, 10, 66, 3, 2, 1),
        c(13, 33, 7, 6, 130, 3, 1, 0),
        c(30, 300, 5, 5, 260, 1, 2, 0),
    ];
    for p in &split {
        let (forward, input_grad) = launch::conv2d_output_splits(&g, p, Dtype::F32).unwrap();
        assert!(
            forward > 1 && input_grad > 1,
            "{p:?}: {forward} {input_grad}"
        );
        assert!(
            launch::conv2d_weight_grad_splits(&g, p, Dtype::F32)
                .unwrap()
                .0
                > 1,
            "{p:?}"
        );
    }
    passes_match_cpu(&g, split.into_iter().chain(shapes()));
}

fn passes_match_cpu(g: &autorep_kernels::Gpu, shapes: impl Iterator<Item = ConvParams>) {
    for p in shapes {
        let (x, w, dy) = (
            rand_vec(1, p.x_len()),
            rand_vec(2, p.w_len()),
            rand_vec(3, p.y_len()),
        );
        let (bx, bw, bdy) = (
            g.upload(&x).unwrap(),
            g.upload(&w).unwrap(),
            g.upload(&dy).unwrap(),
        );
        // Outputs start as garbage: every pass must write every element (also the input-grad
        // pixels that no tap reaches, e.g. three in four for a 1x1 stride-2 kernel), and the
        // split-K scratch must not leak old sums.
        let junk = |n: usize| g.upload(&vec![7.5f32; n]).unwrap();
        let (by, bdx, bdw) = (junk(p.y_len()), junk(p.x_len()), junk(p.w_len()));
        let (_, scratch_len) = launch::conv2d_weight_grad_splits(g, &p, Dtype::F32).unwrap();
        let scratch = junk(scratch_len);
        launch::conv2d_forward(g, &p, &bx, &bw, &by).unwrap();
        launch::conv2d_input_grad(g, &p, &bdy, &bw, &bdx).unwrap();
        launch::conv2d_weight_grad(g, &p, &bx, &bdy, &scratch, &bdw).unwrap();
        let [y, dx, dw] = conv_twins(&p, &x, &w, &dy);
        let e = rel_err(&g.read_f32(&by, 0, p.y_len()).unwrap(), &y);
        assert!(e <= 1e-4, "{p:?} forward {e}");
        let e = rel_err(&g.read_f32(&bdx, 0, p.x_len()).unwrap(), &dx);
        assert!(e <= 1e-4, "{p:?} input grad {e}");
        let e = rel_err(&g.read_f32(&bdw, 0, p.w_len()).unwrap(), &dw);
        assert!(e <= 1e-4, "{p:?} weight grad {e}");
    }
}

#[test]
fn weight_grad_split_k_matches_cpu_on_a_long_reduction() {
    let Some(g) = gpu() else { return };
    // N·OH·OW = 8·24·24 = 4608 > K_PER_SPLIT, so several splits are summed.
    let p = ConvParams {
        n: 8,
        cin: 3,
        h: 24,
        w: 24,
        cout: 5,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    };
    let (splits, scratch_len) = launch::conv2d_weight_grad_splits(&g, &p, Dtype::F32).unwrap();
    assert!(splits > 1);
    let (x, dy) = (rand_vec(4, p.x_len()), rand_vec(5, p.y_len()));
    let (bdw, scratch) = (
        g.alloc(p.w_len() as u64 * 4).unwrap(),
        g.alloc(scratch_len as u64 * 4).unwrap(),
    );
    launch::conv2d_weight_grad(
        &g,
        &p,
        &g.upload(&x).unwrap(),
        &g.upload(&dy).unwrap(),
        &scratch,
        &bdw,
    )
    .unwrap();
    let mut dw = vec![0f32; p.w_len()];
    cpu::conv2d_weight_grad(&p, &x, &dy, &mut dw);
    let e = rel_err(&g.read_f32(&bdw, 0, p.w_len()).unwrap(), &dw);
    assert!(e <= 1e-4, "{e}");
}

/// Operands larger than the storage-binding limit are split over the batch (a small limit
/// stands in for the 128 MiB one).
#[test]
fn conv_passes_chunk_over_the_batch_under_a_binding_limit() {
    let Some(g) = gpu() else { return };
    g.set_max_binding_for_tests(4096);
    let shapes = [
        conv(7, 3, 9, 9, 5, 3, 1, 1),
        conv(5, 4, 10, 10, 3, 3, 2, 1),
        conv(6, 5, 9, 9, 4, 1, 2, 0),
    ];
    for p in &shapes {
        assert!(p.x_len() * 4 > 4096, "the input must need chunking");
    }
    passes_match_cpu(&g, shapes.into_iter());
}

/// Every pass of `p` on random inputs stored as `dtype` (outputs start as garbage).
fn run_passes(
    g: &autorep_kernels::Gpu,
    p: &ConvParams,
    dtype: autorep_kernels::Dtype,
) -> [Vec<f32>; 3] {
    let (x, w, dy) = (
        rand_vec(1, p.x_len()),
        rand_vec(2, p.w_len()),
        rand_vec(3, p.y_len()),
    );
    common::gpu_conv_passes(g, p, [&x, &w, &dy], dtype)
}

/// The SIMT tiles' pipelined K loop (`Gpu::prefetch`: the next slice loaded during this
/// one's multiply-adds) stages the same values in the same order as the plain loop, so every
/// pass agrees bit for bit: every tile size, stride phases, 1x1 and 5x5 kernels, K shorter
/// than one slice, with and without split K, in f32 and f16.
#[test]
fn prefetching_conv_tiles_match_the_plain_ones_bit_for_bit() {
    let Some(g) = gpu() else { return };
    let c = conv;
    let cases = [
        (0, c(2, 3, 7, 9, 5, 3, 1, 1)), // K = 27: four slices, the last partial
        (0, c(3, 5, 9, 7, 7, 3, 2, 1)), // stride-2 phases
        (0, c(2, 7, 8, 8, 13, 1, 2, 0)), // 1x1 stride 2: phases without taps
        (0, c(5, 17, 6, 5, 65, 3, 1, 1)), // two column tiles
        (0, c(3, 5, 13, 13, 70, 3, 1, 1)), // several row tiles
        (1 << 22, c(6, 40, 9, 7, 40, 3, 1, 1)), // split K in every pass
    ];
    for (i, (split_target, p)) in cases.into_iter().enumerate() {
        g.set_split_target_for_tests(split_target);
        // f16 (where the adapter has it) on two cases: the same loop in the other variant.
        let dtypes = common::dtypes(&g);
        for &dtype in &dtypes[..if i < 2 { dtypes.len() } else { 1 }] {
            g.set_prefetch(false);
            let plain = run_passes(&g, &p, dtype);
            g.set_prefetch(true);
            let pipelined = run_passes(&g, &p, dtype);
            g.set_prefetch(false);
            let passes = ["forward", "input grad", "weight grad"];
            for (pass, (a, b)) in passes.iter().zip(plain.iter().zip(&pipelined)) {
                let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same,
                    "{p:?} {dtype:?} {pass}: prefetching changed the result"
                );
            }
        }
    }
    g.set_split_target_for_tests(0);
}
