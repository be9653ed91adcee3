//! The tensor-core GEMM (cooperative matrices) against the SIMT GEMM on the same f16 inputs,
//! and both against the CPU twin. Runs where the adapter reports 16x16x16 f16 x f16 -> f32
//! cooperative matrices (NVIDIA's Vulkan driver); says it skipped elsewhere (lavapipe, CI).

mod common;
use autorep_kernels::params::GemmParams;
use autorep_kernels::{cpu, launch, round_to_f16, Dtype, Gpu, GpuBuffer};
use common::{gpu, rand_vec, rel_err};

fn coop_gpu() -> Option<Gpu> {
    let g = gpu()?;
    if !g.report().coop_f16 {
        eprintln!(
            "skipping the cooperative-matrix test: {} has no 16x16x16 f16->f32 cooperative matrices",
            g.report().name
        );
        return None;
    }
    Some(g)
}

fn halves(seed: u64, n: usize) -> Vec<f32> {
    let mut v = rand_vec(seed, n);
    round_to_f16(&mut v);
    v
}

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
    ];
    for (m, n, k, ta, tb, with_bias, accumulate) in cases {
        let mut p = GemmParams::dense(m, n, k, ta, tb);
        if with_bias {
            p.bias_off = Some(0);
        }
        p.accumulate = accumulate;
        let (a, b, bias, c0) = (
            halves(1, m * k),
            halves(2, k * n),
            halves(3, n),
            halves(4, m * n),
        );
        let tc = run(&g, true, &p, &a, &b, &bias, &c0);
        let simt = run(&g, false, &p, &a, &b, &bias, &c0);
        let mut want = c0.clone();
        cpu::gemm(&p, &a, &b, &bias, &mut want);
        round_to_f16(&mut want);
        let (e_tc, e_simt) = (rel_err(&tc, &want), rel_err(&simt, &want));
        eprintln!("{m}x{n}x{k} ta {ta} tb {tb}: tensor cores {e_tc:.2e}, SIMT {e_simt:.2e}");
        assert!(
            e_tc < 4e-3 && e_simt < 4e-3,
            "{m}x{n}x{k}: {e_tc} / {e_simt}"
        );
        assert!(rel_err(&tc, &simt) < 4e-3, "{m}x{n}x{k}: the paths differ");
    }
    g.set_coop_for_tests(true);
}
