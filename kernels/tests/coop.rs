//! The tensor-core GEMM and convolution passes (cooperative matrices) against the SIMT kernels
//! on the same f16 inputs, and both against the CPU twins. On the tensor cores where the
//! adapter reports 16x16x16 f16 x f16 -> f32 cooperative matrices (NVIDIA's Vulkan driver);
//! elsewhere (lavapipe, CI) on the same shaders with their cooperative-matrix operations
//! emulated in plain WGSL (`Gpu::open_emulating_coop`), which checks everything but the
//! hardware's own multiply-adds, and says so.

mod common;
use autorep_kernels::params::{ConvParams, GemmParams};
use autorep_kernels::{cpu, launch, round_to_f16, Dtype, Gpu, GpuBuffer};
use common::{conv, conv_twins, coop_gpu, gpu, halves, rel_err};

fn run(
    g: &Gpu,
    coop: bool,
    p: &GemmParams,
    a: &[f32],
    b: &[f32],
    bias: &[f32],
    c0: &[f32],
) -> Vec<f32> {
    g.set_coop_for_tests(coop);
    let (ba, bb, bbias) = (
        g.upload_f16(a).unwrap(),
        g.upload_f16(b).unwrap(),
        g.upload_f16(bias).unwrap(),
    );
    let bc: GpuBuffer = g.upload_f16(c0).unwrap();
    assert_eq!(bc.dtype(), Dtype::F16);
    let with_bias = p.bias_off.is_some().then_some(&bbias);
    launch::gemm(g, p, &ba, &bb, with_bias, &bc).unwrap();
    g.read_f16(&bc, 0, c0.len()).unwrap()
}

/// `p` on random f16 operands (seeds from `seed`) on tensor cores and on the SIMT core, both
/// against the CPU twin rounded as the kernels store.
fn check_gemm(g: &Gpu, p: &GemmParams, seed: u64) {
    let (na, nb, nc) = p.extents();
    let (a, b, bias, c0) = (
        halves(seed, na),
        halves(seed + 1, nb),
        halves(seed + 2, p.n),
        halves(seed + 3, nc),
    );
    let tc = run(g, true, p, &a, &b, &bias, &c0);
    let simt = run(g, false, p, &a, &b, &bias, &c0);
    let mut want = c0.clone();
    cpu::gemm(p, &a, &b, &bias, &mut want);
    round_to_f16(&mut want);
    let (e_tc, e_simt) = (rel_err(&tc, &want), rel_err(&simt, &want));
    let shape = format!("{}x{}x{} batch {}", p.m, p.n, p.k, p.batch);
    eprintln!(
        "{shape} a {:?} b {:?}: tensor cores {e_tc:.2e}, SIMT {e_simt:.2e}",
        p.a, p.b
    );
    assert!(e_tc < 4e-3 && e_simt < 4e-3, "{shape}: {e_tc} / {e_simt}");
    assert!(rel_err(&tc, &simt) < 4e-3, "{shape}: the paths differ");
}

#[test]
fn tensor_core_gemm_matches_the_simt_gemm_and_the_twin() {
    let Some(g) = coop_gpu() else { return };
    let cases = [
        (64, 64, 64, false, false, false, false),
        (100, 37, 53, false, false, true, false),
        (33, 130, 300, true, false, false, true),
        (257, 70, 48, false, true, true, true),
        (1, 1, 1, false, false, false, false),
        (512, 512, 1024, false, false, false, false),
        // Tiles inside C over row-major operands load fragments directly; here with bias and
        // accumulation, then beside staged edge tiles, then transposed (staged).
        (256, 192, 96, false, false, true, true),
        (300, 130, 64, false, false, false, false),
        (256, 128, 64, true, true, false, false),
    ];
    for (m, n, k, ta, tb, with_bias, accumulate) in cases {
        let mut p = GemmParams::dense(m, n, k, ta, tb);
        if with_bias {
            p.bias_off = Some(0);
        }
        p.accumulate = accumulate;
        check_gemm(&g, &p, 1);
    }
    g.set_coop_for_tests(true);
}

/// Batched products whose batch strides leave some batches' operands off the 16-byte
/// alignment the direct fragment loads need (those batches' tiles stage instead), a K that is
/// not a multiple of 16 (every tile stages), and row strides wider than the matrices.
#[test]
fn batched_tensor_core_gemms_mix_direct_and_staged_tiles() {
    let Some(g) = coop_gpu() else { return };
    let mut cases = Vec::new();
    let mut p = GemmParams::dense(256, 128, 80, false, false);
    p.batch = 3;
    p.a.bs = 256 * 80 + 4; // batch 1 misaligned, batch 2 aligned again
    p.b.bs = 80 * 128;
    p.c.bs = 256 * 128;
    cases.push(p);
    let mut p = GemmParams::dense(128, 64, 40, false, false);
    p.bias_off = Some(0);
    cases.push(p);
    let mut p = GemmParams::dense(128, 64, 64, false, false);
    p.a.rs = 72; // aligned, wider than K
    p.b.rs = 68; // not a multiple of 8: staged
    p.accumulate = true;
    cases.push(p);
    for p in cases {
        check_gemm(&g, &p, 11);
    }
    g.set_coop_for_tests(true);
}

/// The three convolution passes of `p` on f16 data; outputs start as garbage, so every element
/// must be written.
fn conv_passes(
    g: &Gpu,
    coop: bool,
    p: &ConvParams,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 3] {
    g.set_coop_for_tests(coop);
    common::gpu_conv_passes(g, p, [x, w, dy], Dtype::F16)
}

#[test]
fn tensor_core_convolutions_match_the_simt_passes_and_the_twin() {
    let Some(g) = coop_gpu() else { return };
    let c = conv;
    // Odd sizes, strides 1 and 2, 1x1, 3x3 and 5x5 taps, a stem (3 channels), more channels
    // than one tile's 64 columns, ResNet-shaped layers (the wide tile from 128 columns); then
    // the split-K paths.
    let shapes = [
        c(2, 3, 7, 9, 5, 3, 1, 1),
        c(3, 5, 9, 7, 7, 3, 2, 1),
        c(2, 7, 8, 8, 13, 1, 2, 0),
        c(2, 17, 12, 10, 66, 5, 2, 2),
        c(4, 3, 32, 32, 64, 3, 1, 1),
        c(4, 64, 16, 16, 64, 3, 1, 1),
        c(4, 64, 16, 16, 128, 3, 2, 1),
        c(4, 64, 16, 16, 128, 1, 2, 0),
        c(2, 256, 4, 4, 512, 3, 2, 1),
        // The wide tile (128 output columns and more) with a partial column tile.
        c(2, 17, 12, 10, 200, 3, 1, 1),
    ];
    for (split, list) in [(false, &shapes[..]), (true, &shapes[4..])] {
        if split {
            g.set_split_target_for_tests(1 << 22);
        }
        for p in list {
            let (x, w, dy) = (
                halves(5, p.x_len()),
                halves(6, p.w_len()),
                halves(7, p.y_len()),
            );
            let tc = conv_passes(&g, true, p, &x, &w, &dy);
            let simt = conv_passes(&g, false, p, &x, &w, &dy);
            let passes = ["forward", "input grad", "weight grad"];
            for (i, mut want) in conv_twins(p, &x, &w, &dy).into_iter().enumerate() {
                round_to_f16(&mut want);
                let (e_tc, e_simt) = (rel_err(&tc[i], &want), rel_err(&simt[i], &want));
                let pass = passes[i];
                eprintln!("{p:?} split {split} {pass}: tensor cores {e_tc:.2e}, SIMT {e_simt:.2e}");
                assert!(
                    e_tc < 4e-3 && e_simt < 4e-3,
                    "{p:?} {pass}: {e_tc} / {e_simt}"
                );
            }
        }
    }
    g.set_coop_for_tests(true);
}

/// The tensor-core tiles' pipelined K loop (`Gpu::prefetch`: the next slice gathered
/// into registers during this one's multiply-adds) stages the same values in the same places
/// as the plain loop, so every pass agrees bit for bit: narrow and wide tiles, stride phases,
/// 1x1, a stem, K shorter than one slice, with and without split K.
#[test]
fn prefetching_tensor_core_convolutions_match_the_plain_ones_bit_for_bit() {
    let Some(g) = coop_gpu() else { return };
    let c = conv;
    let cases = [
        (0, c(2, 3, 7, 9, 5, 3, 1, 1)),
        (0, c(3, 5, 9, 7, 7, 3, 2, 1)),
        (0, c(4, 64, 16, 16, 128, 1, 2, 0)),
        (0, c(4, 64, 16, 16, 64, 3, 1, 1)),
        (0, c(2, 17, 12, 10, 200, 3, 1, 1)),
        (1 << 22, c(4, 64, 16, 16, 128, 3, 2, 1)),
    ];
    for (split_target, p) in cases {
        g.set_split_target_for_tests(split_target);
        let (x, w, dy) = (
            halves(5, p.x_len()),
            halves(6, p.w_len()),
            halves(7, p.y_len()),
        );
        g.set_prefetch(false);
        let plain = conv_passes(&g, true, &p, &x, &w, &dy);
        g.set_prefetch(true);
        let pipelined = conv_passes(&g, true, &p, &x, &w, &dy);
        g.set_prefetch(false);
        let passes = ["forward", "input grad", "weight grad"];
        for (pass, (a, b)) in passes.iter().zip(plain.iter().zip(&pipelined)) {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{p:?} {pass}: prefetching changed the result");
        }
    }
    g.set_split_target_for_tests(0);
}

/// The tensor-core ceiling kernels (`bench gemm --precision f16`) store exactly what their twin
/// says in every subgroup of every workgroup, whichever memory their fragments come from; an
/// adapter without cooperative matrices refuses them with a typed error (and then runs them
/// emulated).
#[test]
fn tensor_core_ceiling_kernels_match_their_twin() {
    use autorep_kernels::launch::{PeakLoads, COOP_PEAK_OUT_PER_GROUP, COOP_PEAK_SRC_LEN};
    let Some(g) = gpu() else { return };
    // Small integers: every product and sum is exact in f16 operands and f32 accumulators.
    let copy: Vec<f32> = (0..COOP_PEAK_SRC_LEN / 2)
        .map(|i| ((i * 7 + i / 13) % 5) as f32 - 2.0)
        .collect();
    let src = [copy.clone(), copy.clone()].concat();
    let (iters, groups) = (3, 3);
    let buffers = |g: &Gpu| {
        let s = g.upload_f16(&src).unwrap();
        let d = g
            .alloc_elems(groups * COOP_PEAK_OUT_PER_GROUP, Dtype::F32)
            .unwrap();
        (s, d)
    };
    if !g.report().coop_f16 {
        let (s, d) = buffers(&g);
        let err = launch::coop_peak(&g, PeakLoads::Registers, iters, groups, &s, &d).unwrap_err();
        assert!(err.to_string().contains("cooperative matrices"), "{err}");
    }
    let Some(g) = coop_gpu() else { return };
    let (s, d) = buffers(&g);
    let want = cpu::coop_peak(iters, &copy);
    for loads in [PeakLoads::Registers, PeakLoads::Shared, PeakLoads::Global] {
        launch::fill(&g, groups * COOP_PEAK_OUT_PER_GROUP, f32::NAN, &d).unwrap();
        launch::coop_peak(&g, loads, iters, groups, &s, &d).unwrap();
        let got = g.read_f32(&d, 0, groups * COOP_PEAK_OUT_PER_GROUP).unwrap();
        for (k, sub) in got.chunks(8 * 256).enumerate() {
            assert_eq!(sub, &want[..], "{loads:?}: subgroup {k}");
        }
    }
}

/// The ceiling kernels' twin is iters · A·B, cut into the 16x16 tiles in the kernels' order.
#[test]
fn the_ceiling_twin_is_a_gemm_cut_into_tiles() {
    let a = common::rand_vec(5, 64 * 16);
    let b = common::rand_vec(6, 16 * 32);
    let mut c = vec![0.0; 64 * 32];
    cpu::gemm(
        &GemmParams::dense(64, 32, 16, false, false),
        &a,
        &b,
        &[],
        &mut c,
    );
    let tiles = cpu::coop_peak(2, &[a, b].concat());
    for (t, tile) in tiles.chunks(256).enumerate() {
        let (i, j) = (t / 2, t % 2);
        for (e, v) in tile.iter().enumerate() {
            let want = 2.0 * c[(16 * i + e / 16) * 32 + 16 * j + e % 16];
            assert!(
                (v - want).abs() < 1e-5,
                "tile {t} element {e}: {v} vs {want}"
            );
        }
    }
}

/// The check hardware tensor cores get before their first f16 work (here run by hand, as
/// emulated tiles are never checked on their own): it passes correct tiles, covering both conv
/// tiles, and a failed check turns the path off and is remembered.
#[test]
fn the_tensor_core_check_passes_correct_tiles_and_turns_a_wrong_path_off() {
    use autorep_kernels::{CoopCheck, Tile, COOP_CHECK_TOLERANCE};
    let Some(g) = coop_gpu() else { return };
    if g.report().coop_emulated {
        assert_eq!(
            g.ensure_coop_checked(),
            None,
            "emulated tiles checked on their own"
        );
    } else {
        let first = g.ensure_coop_checked();
        assert!(matches!(first, Some(CoopCheck::Passed { .. })), "{first:?}");
    }
    g.collect_conv_passes(true);
    let check = g.check_coop(COOP_CHECK_TOLERANCE);
    eprintln!("{check:?}");
    let Some(CoopCheck::Passed { worst }) = check else {
        panic!("{check:?}")
    };
    assert!(worst < 2e-3, "{worst}");
    assert!(g.uses_coop_f16());
    let tiles: Vec<Tile> = g
        .collect_conv_passes(false)
        .iter()
        .map(|k| {
            launch::conv_plan(&g, k.pass, &k.shape, Dtype::F16)
                .unwrap()
                .tile
        })
        .collect();
    assert_eq!(tiles.len(), 6, "{tiles:?}");
    assert!(
        tiles.contains(&Tile::Coop) && tiles.contains(&Tile::CoopWide),
        "{tiles:?}"
    );

    let failed = g.check_coop(-1.0);
    let Some(CoopCheck::Failed { what }) = &failed else {
        panic!("{failed:?}")
    };
    assert!(what.starts_with("GEMM 128x128x64 is off by"), "{what}");
    assert!(!g.uses_coop_f16());
    assert_eq!(g.coop_check(), failed);
    // With the path off there is nothing to check.
    assert_eq!(g.check_coop(COOP_CHECK_TOLERANCE), None);
    g.set_coop_for_tests(true);
}
