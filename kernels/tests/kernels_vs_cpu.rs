//! Every GPU launcher against its CPU twin on random inputs with odd sizes.

mod common;
use autorep_kernels::{cpu, launch, params::GemmParams, params::Strided};
use common::{gpu, rand_vec, rel_err};

const SIZES: &[usize] = &[1, 7, 33, 129, 1000, 70_001];

#[test]
fn elementwise_ops_match_cpu() {
    let Some(g) = gpu() else { return };
    for &n in SIZES {
        let x = rand_vec(1, n);
        let y = rand_vec(2, n);
        let (bx, by) = (g.upload(&x).unwrap(), g.upload(&y).unwrap());
        let out = g.alloc(n as u64 * 4).unwrap();
        let mut want = vec![0f32; n];
        let check = |want: &[f32], what: &str| {
            let got = g.read_f32(&out, 0, n).unwrap();
            let e = rel_err(&got, want);
            assert!(e <= 1e-5, "{what} n={n}: rel err {e}");
        };
        launch::axpby(&g, n, 0.5, &bx, -2.0, &by, &out).unwrap();
        cpu::axpby(0.5, &x, -2.0, &y, &mut want);
        check(&want, "axpby");
        launch::mul(&g, n, &bx, &by, &out).unwrap();
        cpu::mul(&x, &y, &mut want);
        check(&want, "mul");
        launch::relu_backward(&g, n, &bx, &by, &out).unwrap();
        cpu::relu_backward(&x, &y, &mut want);
        check(&want, "relu_backward");
        launch::scale(&g, n, 3.0, &bx, &out).unwrap();
        cpu::scale(3.0, &x, &mut want);
        check(&want, "scale");
        launch::relu(&g, n, &bx, &out).unwrap();
        cpu::relu(&x, &mut want);
        check(&want, "relu");
        // Large |x| too: σ must neither overflow nor lose the tails.
        let wide: Vec<f32> = x.iter().map(|v| v * 40.0).collect();
        let bw = g.upload(&wide).unwrap();
        launch::silu(&g, n, &bw, &out).unwrap();
        cpu::silu(&wide, &mut want);
        check(&want, "silu");
        launch::sigmoid(&g, n, &bw, &out).unwrap();
        cpu::sigmoid(&wide, &mut want);
        check(&want, "sigmoid");
        launch::silu_backward(&g, n, &bx, &by, &out).unwrap();
        cpu::silu_backward(&x, &y, &mut want);
        check(&want, "silu_backward");
        launch::sigmoid_backward(&g, n, &bx, &by, &out).unwrap();
        cpu::sigmoid_backward(&x, &y, &mut want);
        check(&want, "sigmoid_backward");
        launch::axpy_inplace(&g, n, 0.25, &by, &out).unwrap();
        cpu::axpy_inplace(0.25, &y, &mut want);
        check(&want, "axpy_inplace");
        // Part of the buffer only: what lies before the range stays as it was.
        let from = n / 3;
        launch::clamp_range(&g, from..n, -0.3, 0.2, &out).unwrap();
        cpu::clamp(-0.3, 0.2, &mut want[from..]);
        check(&want, "clamp_range");
        launch::fill(&g, n, 1.5, &out).unwrap();
        cpu::fill(1.5, &mut want);
        check(&want, "fill");
    }
}

#[test]
fn bias_add_matches_cpu() {
    let Some(g) = gpu() else { return };
    for &(outer, c, inner) in &[(1, 1, 1), (3, 7, 33), (5, 13, 1), (2, 129, 9)] {
        let n = outer * c * inner;
        let x = rand_vec(3, n);
        let b = rand_vec(4, c);
        let out = g.alloc(n as u64 * 4).unwrap();
        launch::bias_add(
            &g,
            n,
            c,
            inner,
            &g.upload(&x).unwrap(),
            &g.upload(&b).unwrap(),
            &out,
        )
        .unwrap();
        let mut want = vec![0f32; n];
        cpu::bias_add(&x, &b, inner, &mut want);
        let e = rel_err(&g.read_f32(&out, 0, n).unwrap(), &want);
        assert!(e <= 1e-5, "bias_add {outer}x{c}x{inner}: {e}");
    }
}

#[test]
fn expand_mid_matches_cpu() {
    let Some(g) = gpu() else { return };
    for &(outer, len, inner) in &[(1, 1, 1), (1, 1000, 1), (3, 7, 33), (5, 1, 13), (2, 129, 9)] {
        let y = rand_vec(13, outer * inner);
        let n = outer * len * inner;
        let out = g.alloc(n as u64 * 4).unwrap();
        launch::expand_mid(&g, outer, len, inner, 0.5, &g.upload(&y).unwrap(), &out).unwrap();
        let mut want = vec![0f32; n];
        cpu::expand_mid(&y, len, inner, 0.5, &mut want);
        let e = rel_err(&g.read_f32(&out, 0, n).unwrap(), &want);
        assert!(e <= 1e-5, "expand_mid {outer}x{len}x{inner}: {e}");
    }
}

#[test]
fn reductions_match_cpu() {
    let Some(g) = gpu() else { return };
    for &n in SIZES.iter().chain(&[300_007]) {
        let x = rand_vec(5, n);
        let bx = g.upload(&x).unwrap();
        let chunk = launch::sum_all_chunk(n);
        let scratch = g.alloc(n.div_ceil(chunk) as u64 * 4).unwrap();
        let out = g.alloc(4).unwrap();
        launch::sum_all(&g, n, 0.5, &bx, &scratch, &out).unwrap();
        let want = 0.5 * x.iter().map(|&v| v as f64).sum::<f64>() as f32;
        let got = g.read_f32(&out, 0, 1).unwrap()[0];
        let scale = x.iter().map(|v| v.abs()).sum::<f32>() * 0.5;
        assert!(
            (got - want).abs() <= 1e-4 * scale.max(1.0),
            "sum_all n={n}: {got} vs {want}"
        );
    }
    for &(outer, len, inner) in &[(1, 1, 1), (1, 129, 7), (3, 33, 1), (7, 5, 13), (2, 1000, 3)] {
        let x = rand_vec(6, outer * len * inner);
        let out = g.alloc((outer * inner) as u64 * 4).unwrap();
        launch::sum_mid(&g, outer, len, inner, 2.0, &g.upload(&x).unwrap(), &out).unwrap();
        let mut want = vec![0f32; outer * inner];
        cpu::sum_mid(&x, outer, len, inner, 2.0, &mut want);
        let e = rel_err(&g.read_f32(&out, 0, outer * inner).unwrap(), &want);
        assert!(e <= 1e-4, "sum_mid {outer}x{len}x{inner}: {e}");
        if outer == 1 {
            // The split-K planes' sum: f32 planes into an f32 output.
            launch::sum_planes(&g, len, inner, &g.upload(&x).unwrap(), &out).unwrap();
            cpu::sum_mid(&x, 1, len, inner, 1.0, &mut want);
            let e = rel_err(&g.read_f32(&out, 0, inner).unwrap(), &want);
            assert!(e <= 1e-4, "sum_planes {len}x{inner}: {e}");
        }
    }
}

#[test]
fn cross_entropy_matches_cpu() {
    let Some(g) = gpu() else { return };
    for &(rows, classes, eps) in &[(1, 2, 0.0), (7, 10, 0.0), (33, 100, 0.1), (129, 7, 0.2)] {
        let logits: Vec<f32> = rand_vec(7, rows * classes)
            .iter()
            .map(|v| v * 5.0)
            .collect();
        let labels: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % classes) as u32).collect();
        let gloss = rand_vec(8, rows);
        let (bl, by, bg) = (
            g.upload(&logits).unwrap(),
            g.upload(&labels).unwrap(),
            g.upload(&gloss).unwrap(),
        );
        let (loss, correct) = (
            g.alloc(rows as u64 * 4).unwrap(),
            g.alloc(rows as u64 * 4).unwrap(),
        );
        let glogits = g.alloc((rows * classes) as u64 * 4).unwrap();
        launch::ce_forward(&g, rows, classes, eps, &bl, &by, &loss, &correct).unwrap();
        launch::ce_backward(&g, rows, classes, eps, &bl, &by, &bg, &glogits).unwrap();
        let (mut wl, mut wc, mut wg) = (
            vec![0f32; rows],
            vec![0f32; rows],
            vec![0f32; rows * classes],
        );
        cpu::ce_forward(&logits, &labels, classes, eps, &mut wl, &mut wc);
        cpu::ce_backward(&logits, &labels, &gloss, classes, eps, &mut wg);
        assert!(rel_err(&g.read_f32(&loss, 0, rows).unwrap(), &wl) <= 1e-5);
        assert_eq!(g.read_f32(&correct, 0, rows).unwrap(), wc);
        assert!(rel_err(&g.read_f32(&glogits, 0, rows * classes).unwrap(), &wg) <= 1e-5);
    }
}

/// Transposed reads must equal multiplying explicitly transposed copies.
#[test]
fn transposed_gemm_equals_explicit_transpose() {
    let (m, n, k) = (5, 3, 4);
    let a = rand_vec(20, m * k); // [m, k]
    let b = rand_vec(21, k * n); // [k, n]
    let t = |x: &[f32], r: usize, c: usize| -> Vec<f32> {
        (0..c * r).map(|i| x[(i % r) * c + i / r]).collect()
    };
    let (at, bt) = (t(&a, m, k), t(&b, k, n)); // [k, m], [n, k]
    let mut want = vec![0f32; m * n];
    cpu::gemm(
        &GemmParams::dense(m, n, k, false, false),
        &a,
        &b,
        &[],
        &mut want,
    );
    for (ta, tb) in [(true, false), (false, true), (true, true)] {
        let mut got = vec![0f32; m * n];
        let (aa, bb) = (if ta { &at } else { &a }, if tb { &bt } else { &b });
        cpu::gemm(&GemmParams::dense(m, n, k, ta, tb), aa, bb, &[], &mut got);
        assert!(rel_err(&got, &want) < 1e-6, "ta={ta} tb={tb}");
        if let Some(g) = gpu() {
            let c = g.alloc((m * n) as u64 * 4).unwrap();
            let p = GemmParams::dense(m, n, k, ta, tb);
            launch::gemm(
                &g,
                &p,
                &g.upload(aa).unwrap(),
                &g.upload(bb).unwrap(),
                None,
                &c,
            )
            .unwrap();
            assert!(
                rel_err(&g.read_f32(&c, 0, m * n).unwrap(), &want) < 1e-5,
                "gpu ta={ta} tb={tb}"
            );
        }
    }
}

/// `p` on the GPU against the CPU twin; returns the GPU's C.
fn check_gemm(g: &autorep_kernels::Gpu, p: &GemmParams, what: &str) -> Vec<f32> {
    let (ea, eb, ec) = p.extents();
    let a = rand_vec(9, ea);
    let b = rand_vec(10, eb);
    let c0 = rand_vec(11, ec);
    let bias = rand_vec(12, p.bias_off.map_or(1, |o| o + p.n));
    let bc = g.upload(&c0).unwrap();
    let bb = g.upload(&bias).unwrap();
    launch::gemm(
        g,
        p,
        &g.upload(&a).unwrap(),
        &g.upload(&b).unwrap(),
        Some(&bb),
        &bc,
    )
    .unwrap();
    let mut want = c0.clone();
    cpu::gemm(p, &a, &b, &bias, &mut want);
    let got = g.read_f32(&bc, 0, ec).unwrap();
    let e = rel_err(&got, &want);
    assert!(e <= 1e-4, "gemm {what} {p:?}: rel err {e}");
    got
}

/// gemm.wgsl's pipelined K loop (`Gpu::prefetch`: the next slice loaded during this one's
/// multiply-adds) stages the same values as the plain loop: C agrees bit for bit, for K below,
/// at and beyond one slice, transposes, several tiles, bias and accumulation.
#[test]
fn prefetching_gemm_matches_the_plain_one_bit_for_bit() {
    let Some(g) = gpu() else { return };
    let mut cases: Vec<GemmParams> = [(1, 1, 1), (7, 33, 129), (65, 63, 8), (520, 130, 19)]
        .into_iter()
        .flat_map(|(m, n, k)| {
            [(false, false), (true, true), (false, true)]
                .map(|(ta, tb)| GemmParams::dense(m, n, k, ta, tb))
        })
        .collect();
    let mut p = GemmParams::dense(33, 65, 17, false, true);
    p.bias_off = Some(3);
    p.accumulate = true;
    cases.push(p);
    for p in &cases {
        g.set_prefetch(false);
        let plain = check_gemm(&g, p, "plain");
        g.set_prefetch(true);
        let pipelined = check_gemm(&g, p, "prefetch");
        g.set_prefetch(false);
        let same = plain
            .iter()
            .zip(&pipelined)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{p:?}: prefetching changed the result");
    }
}

#[test]
fn gemm_matches_cpu_on_odd_shapes_and_transposes() {
    let Some(g) = gpu() else { return };
    let shapes = [
        (1, 1, 1),
        (7, 33, 129),
        (129, 7, 33),
        (33, 129, 7),
        (65, 63, 17),
        (100, 1, 300),
    ];
    for &(m, n, k) in &shapes {
        for ta in [false, true] {
            for tb in [false, true] {
                check_gemm(&g, &GemmParams::dense(m, n, k, ta, tb), "dense");
            }
        }
    }
    let mut p = GemmParams::dense(33, 65, 17, false, true);
    p.bias_off = Some(3);
    p.alpha = 0.5;
    check_gemm(&g, &p, "bias+alpha");
    p.accumulate = true;
    check_gemm(&g, &p, "accumulate");
    // Batched, with offsets and a padded C row stride.
    let q = GemmParams {
        m: 9,
        n: 11,
        k: 13,
        batch: 3,
        a: Strided {
            off: 5,
            rs: 13,
            cs: 1,
            bs: 9 * 13 + 2,
        },
        b: Strided {
            off: 1,
            rs: 1,
            cs: 13,
            bs: 11 * 13,
        },
        c: Strided {
            off: 2,
            rs: 12,
            cs: 1,
            bs: 9 * 12,
        },
        bias_off: None,
        accumulate: false,
        alpha: 1.0,
    };
    check_gemm(&g, &q, "batched");
}

#[test]
fn gemm_matches_cpu_across_several_tiles() {
    let Some(g) = gpu() else { return };
    // More than one 256x64 workgroup tile in both directions, with ragged edges.
    for &(m, n, k) in &[(520, 130, 19), (257, 65, 9)] {
        for ta in [false, true] {
            for tb in [false, true] {
                check_gemm(&g, &GemmParams::dense(m, n, k, ta, tb), "tiles");
            }
        }
    }
}

/// Operands beyond the storage-binding limit: the launcher splits the call over M (and over K
/// where A is stored transposed), binding only the byte windows each chunk touches.
#[test]
fn gemm_chunks_operands_beyond_the_binding_limit() {
    let Some(g) = gpu() else { return };
    g.set_max_binding_for_tests(4096);
    assert_eq!(g.max_binding(), 4096);
    // A is 300x40 (48 KB) and C 300x24 (29 KB), both far beyond 4 KiB; B (3.8 KB) fits.
    for ta in [false, true] {
        for tb in [false, true] {
            let before = g.stream_stats().dispatches;
            check_gemm(&g, &GemmParams::dense(300, 24, 40, ta, tb), "chunked");
            assert!(
                g.stream_stats().dispatches - before > 1,
                "ta={ta} tb={tb}: not chunked"
            );
        }
    }
    // Bias and the accumulate flag must apply once even when K is split.
    let mut p = GemmParams::dense(300, 24, 40, true, false);
    p.bias_off = Some(5);
    p.alpha = 0.5;
    p.accumulate = true;
    check_gemm(&g, &p, "chunked bias+alpha+accumulate");
    p.a = Strided {
        off: 0,
        rs: 40,
        cs: 1,
        bs: 0,
    };
    check_gemm(&g, &p, "chunked bias+alpha+accumulate, plain A");
    // Batched with offsets (windows start off the alignment) and a padded C row stride; B is
    // too large to bind whole here and is windowed as well.
    let q = GemmParams {
        m: 130,
        n: 9,
        k: 150,
        batch: 2,
        a: Strided {
            off: 3,
            rs: 150,
            cs: 1,
            bs: 130 * 150 + 5,
        },
        b: Strided {
            off: 7,
            rs: 9,
            cs: 1,
            bs: 150 * 9 + 1,
        },
        c: Strided {
            off: 1,
            rs: 10,
            cs: 1,
            bs: 130 * 10 + 3,
        },
        bias_off: None,
        accumulate: false,
        alpha: 1.0,
    };
    check_gemm(&g, &q, "chunked batched");
    // A single row of C wider than the limit cannot be split: a typed error, not a crash.
    let p = GemmParams::dense(2, 1100, 1, false, false);
    let (a, b, c) = (
        g.alloc(8).unwrap(),
        g.alloc(4400).unwrap(),
        g.alloc(8800).unwrap(),
    );
    let err = launch::gemm(&g, &p, &a, &b, None, &c).unwrap_err();
    assert!(
        matches!(err, autorep_kernels::KernelError::BindingTooLarge { .. }),
        "{err}"
    );
    g.check("after refused gemm").unwrap();
}
