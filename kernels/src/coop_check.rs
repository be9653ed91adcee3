//! The tensor-core path's check before its first use: wgpu marks cooperative matrices
//! experimental, and what runs on the tensor cores is naga's SPIR-V as the driver lowers it,
//! which no test of ours sees on a user's machine. So where an adapter offers them, the first
//! command to settle on f16 there ([`Gpu::ensure_coop_checked`]) runs the GEMM
//! (direct and staged fragments) and the three convolution passes (both tiles, stride phases,
//! the split-K planes the adapter's target gives small outputs) on small f16 operands, compares
//! each with its CPU twin, and turns the path off if any is wrong: training then runs on the
//! SIMT tiles, which are correct wherever the adapter runs WGSL at all, and the binary says so.

use crate::conv_plan::ConvPass;
use crate::params::{ConvParams, GemmParams};
use crate::{cpu, launch, round_to_f16, Dtype, Gpu, GpuBuffer, Result};

/// Normwise relative error above which a tensor-core pass counts as wrong. Correct passes
/// differ from the twin by f16 rounding of the output and the order of the f32 sums (below
/// 1e-3 in `kernels/tests/coop.rs`); a wrong fragment layout or multiply-add is off by O(1).
pub const COOP_CHECK_TOLERANCE: f32 = 1e-2;

/// What the check of the tensor-core path found.
#[derive(Clone, Debug, PartialEq)]
pub enum CoopCheck {
    /// Every pass agreed with its twin; the worst normwise relative error of them.
    Passed { worst: f32 },
    /// A pass was wrong or failed to run, so the path is off: which, and how.
    Failed { what: String },
}

/// The GEMMs and convolutions the check runs: aligned row-major operands (the direct fragment
/// loads) and odd transposed ones with a bias (the staged tile); a convolution of 64 output
/// columns (the narrow tile; stride 2, so the input gradient runs its stride phases) and one of
/// 128 in every pass (the wide tile).
fn gemms() -> [GemmParams; 2] {
    let mut direct = GemmParams::dense(128, 128, 64, false, false);
    direct.accumulate = true;
    let mut staged = GemmParams::dense(70, 37, 53, true, false);
    staged.bias_off = Some(0);
    [direct, staged]
}

fn convs() -> [ConvParams; 2] {
    let c = |cin, hw, cout, stride| ConvParams {
        n: 2,
        cin,
        h: hw,
        w: hw,
        cout,
        kh: 3,
        kw: 3,
        stride,
        pad: 1,
    };
    [c(16, 9, 64, 2), c(128, 6, 128, 1)]
}

/// `n` values in [-1, 1] representable in f16, fixed by `seed` (a splitmix64 stream).
fn halves(seed: u64, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n as u64)
        .map(|i| {
            let mut z = seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(i.wrapping_add(1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
            z = (z ^ (z >> 31)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 29;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    round_to_f16(&mut v);
    v
}

/// max |got - want| / max |want|.
fn normwise(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    // A NaN anywhere must fail the check, and f32::max would drop it.
    if got.iter().any(|v| !v.is_finite()) {
        f32::INFINITY
    } else {
        worst / scale
    }
}

/// `want` as the kernel stores it: rounded to f16.
fn stored(mut want: Vec<f32>) -> Vec<f32> {
    round_to_f16(&mut want);
    want
}

/// One product on the tensor cores: (its name, the normwise error against the twin).
fn gemm_error(gpu: &Gpu, p: &GemmParams, seed: u64) -> Result<(String, f32)> {
    let (na, nb, nc) = p.extents();
    let mut seeds = seed..;
    let [a, b, bias, c0] = [na, nb, p.n, nc].map(|n| halves(seeds.next().unwrap(), n));
    let up = |v: &[f32]| gpu.upload_f16(v);
    let (ba, bb, bbias, bc) = (up(&a)?, up(&b)?, up(&bias)?, up(&c0)?);
    launch::gemm(gpu, p, &ba, &bb, p.bias_off.map(|_| &bbias), &bc)?;
    let got = gpu.read_f16(&bc, 0, nc)?;
    let mut want = c0;
    cpu::gemm(p, &a, &b, &bias, &mut want);
    let name = format!("GEMM {}x{}x{}", p.m, p.n, p.k);
    Ok((name, normwise(&got, &stored(want))))
}

/// The three passes of `p` on the tensor cores: (pass name, normwise error) each.
fn conv_errors(gpu: &Gpu, p: &ConvParams, seed: u64) -> Result<Vec<(String, f32)>> {
    let mut seeds = seed..;
    let [x, w, dy] = [p.x_len(), p.w_len(), p.y_len()].map(|n| halves(seeds.next().unwrap(), n));
    let up = |v: &[f32]| gpu.upload_f16(v);
    let (bx, bw, bdy) = (up(&x)?, up(&w)?, up(&dy)?);
    // Outputs start as garbage, so a pass that leaves elements unwritten fails too.
    let junk = |n: usize| up(&vec![7.5f32; n]);
    let (by, bdx, bdw) = (junk(p.y_len())?, junk(p.x_len())?, junk(p.w_len())?);
    let scratch_len = launch::conv2d_weight_grad_splits(gpu, p, Dtype::F16)?.1;
    let scratch: GpuBuffer = gpu.upload(&vec![0f32; scratch_len.max(1)])?;
    launch::conv2d_forward(gpu, p, &bx, &bw, &by)?;
    launch::conv2d_input_grad(gpu, p, &bdy, &bw, &bdx)?;
    launch::conv2d_weight_grad(gpu, p, &bx, &bdy, &scratch, &bdw)?;
    let (mut y, mut dx, mut dw) = (
        vec![0f32; p.y_len()],
        vec![0f32; p.x_len()],
        vec![0f32; p.w_len()],
    );
    cpu::conv2d_forward(p, &x, &w, &mut y);
    cpu::conv2d_input_grad(p, &dy, &w, &mut dx);
    cpu::conv2d_weight_grad(p, &x, &dy, &mut dw);
    let outputs = [
        (ConvPass::Forward, &by, y),
        (ConvPass::InputGrad, &bdx, dx),
        (ConvPass::WeightGrad, &bdw, dw),
    ];
    let mut errors = Vec::new();
    for (pass, buf, want) in outputs {
        let got = gpu.read_f16(buf, 0, want.len())?;
        let name = format!(
            "conv {} {}x{} {}->{} s{}",
            pass.name(),
            p.kh,
            p.kw,
            p.cin,
            p.cout,
            p.stride
        );
        errors.push((name, normwise(&got, &stored(want))));
    }
    Ok(errors)
}

/// Every case's (name, error), or the first failure to run one.
fn errors(gpu: &Gpu) -> Result<Vec<(String, f32)>> {
    let mut all = Vec::new();
    for (i, p) in gemms().iter().enumerate() {
        all.push(gemm_error(gpu, p, 10 * i as u64 + 1)?);
    }
    for (i, p) in convs().iter().enumerate() {
        all.extend(conv_errors(gpu, p, 10 * i as u64 + 101)?);
    }
    gpu.check("the tensor-core check")?;
    Ok(all)
}

/// The verdict on `errors` at `tolerance`: the first case above it fails the path.
fn verdict(errors: &[(String, f32)], tolerance: f32) -> CoopCheck {
    let worst = errors.iter().fold(0f32, |m, (_, e)| m.max(*e));
    // A NaN error compares false either way, so it fails too.
    match errors.iter().find(|(_, e)| e.is_nan() || *e > tolerance) {
        Some((name, e)) => CoopCheck::Failed {
            what: format!(
                "{name} is off by {e:.2e} of its largest value (allowed {tolerance:.0e})"
            ),
        },
        None => CoopCheck::Passed { worst },
    }
}

impl Gpu {
    /// Run the tensor-core GEMM and convolution passes on small f16 operands against their CPU
    /// twins, turn the path off if any is off by more than `tolerance` (normwise; a negative
    /// tolerance fails every case, which tests the fallback) or fails to run, and record the
    /// result for [`Gpu::coop_check`]. [`Gpu::ensure_coop_checked`] runs it at
    /// [`COOP_CHECK_TOLERANCE`]; on an adapter without them (or with the path off) it checks
    /// nothing and returns `None`.
    pub fn check_coop(&self, tolerance: f32) -> Option<CoopCheck> {
        if !self.uses_coop_f16() {
            return None;
        }
        let check = match errors(self) {
            Ok(errors) => verdict(&errors, tolerance),
            Err(e) => {
                // Run and drain what the failed case queued, so that it does not surface
                // later as the error of some other operation.
                let _ = self.flush();
                let _ = self.wait();
                let _ = self.check("the tensor-core check");
                CoopCheck::Failed {
                    what: format!("a pass failed to run: {e}"),
                }
            }
        };
        if matches!(check, CoopCheck::Failed { .. }) {
            self.0
                .coop
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        *self.0.coop_check.lock().unwrap() = Some(check.clone());
        Some(check)
    }

    /// What the last [`Gpu::check_coop`] found, if it ran.
    pub fn coop_check(&self) -> Option<CoopCheck> {
        self.0.coop_check.lock().unwrap().clone()
    }

    /// The check at [`COOP_CHECK_TOLERANCE`], once per device, before the first f16 work on
    /// hardware tensor cores: where the path is on and not emulated (emulated tiles are the
    /// tests' to check, and compile for tens of seconds on lavapipe), and not yet checked.
    /// Returns what the check found, if it ever ran. Called where a command settles on f16
    /// (the CLI's precision), not at open: f32 work never compiles the experimental shaders,
    /// and a step never waits on the check mid-recording.
    pub fn ensure_coop_checked(&self) -> Option<CoopCheck> {
        let due = self.uses_coop_f16() && !self.0.report.coop_emulated;
        if due && self.coop_check().is_none() {
            self.check_coop(COOP_CHECK_TOLERANCE);
            self.release_free();
        }
        self.coop_check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_fails_on_the_first_case_over_the_tolerance_and_on_nan() {
        let e = |n: &str, v: f32| (n.to_string(), v);
        let ok = [e("a", 1e-4), e("b", 3e-4)];
        assert_eq!(verdict(&ok, 1e-2), CoopCheck::Passed { worst: 3e-4 });
        let CoopCheck::Failed { what } = verdict(&[e("a", 1e-4), e("b", 0.5)], 1e-2) else {
            panic!("0.5 passed")
        };
        assert!(what.starts_with("b is off by 5.00e-1"), "{what}");
        assert!(matches!(
            verdict(&[e("a", f32::NAN)], 1e-2),
            CoopCheck::Failed { .. }
        ));
        assert!(matches!(verdict(&ok, -1.0), CoopCheck::Failed { .. }));
    }

    #[test]
    fn a_non_finite_output_is_an_infinite_error() {
        assert_eq!(normwise(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(normwise(&[1.0, f32::NAN], &[1.0, 2.0]), f32::INFINITY);
        assert!((normwise(&[1.5, 2.0], &[1.0, 2.0]) - 0.25).abs() < 1e-7);
    }

    #[test]
    fn the_operands_are_f16_values_spread_over_the_interval() {
        let v = halves(3, 4096);
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
        let mut r = v.clone();
        round_to_f16(&mut r);
        assert_eq!(r, v);
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.05, "{mean}");
        assert_ne!(halves(3, 8), halves(4, 8));
    }
}
