use crate::error::Result;
use crate::params::DwConvParams;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::recorder::grid;
use crate::uniforms::DwConvUniform as U;
use crate::{Gpu, GpuBuffer};

type K = Kernel<U>;
const ABC: &[crate::Access] = &[Read, Read, ReadWrite];
const FORWARD: K = K::new("dwconv_forward", ABC, [256, 1, 1]);
const INPUT_GRAD: K = K::new("dwconv_input_grad", ABC, [256, 1, 1]);
const WEIGHT_GRAD: K = K::new("dwconv_weight_grad", ABC, [256, 1, 1]);
pub(crate) const ENTRY_POINTS: &[EntryPoint] =
    &[FORWARD.entry, INPUT_GRAD.entry, WEIGHT_GRAD.entry];

fn params(p: &DwConvParams) -> U {
    assert!(p.is_valid(), "invalid depthwise convolution {p:?}");
    let u = |v: usize| v as u32;
    U {
        n: u(p.n),
        c: u(p.c),
        h: u(p.h),
        w: u(p.w),
        oh: u(p.oh()),
        ow: u(p.ow()),
        kh: u(p.kh),
        kw: u(p.kw),
        stride: u(p.stride),
        pad: u(p.pad),
    }
}

/// A pass and its layer, as a profile lists it: "dwconv forward 3x3 96 @56 s2".
fn label(pass: &str, p: &DwConvParams) -> String {
    format!(
        "dwconv {pass} {}x{} {} @{} s{}",
        p.kh, p.kw, p.c, p.h, p.stride
    )
}

/// Multiply-adds of a pass, times two (the three passes do the same number).
fn flops(p: &DwConvParams) -> f64 {
    2.0 * p.y_len() as f64 * (p.kh * p.kw) as f64
}

/// y = depthwise conv(x, w); the CPU twin is [`crate::cpu::dwconv2d_forward`].
pub fn dwconv2d_forward(
    gpu: &Gpu,
    p: &DwConvParams,
    x: &GpuBuffer,
    w: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<()> {
    let b = [x.into(), w.into(), y.into()];
    let _label = gpu.profile_label(|| label("forward", p), flops(p));
    gpu.dispatch(&FORWARD, &[], &params(p), &b, FORWARD.groups_for(p.y_len()))
}

/// dx from dy and w, gathered per input element.
pub fn dwconv2d_input_grad(
    gpu: &Gpu,
    p: &DwConvParams,
    dy: &GpuBuffer,
    w: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let b = [dy.into(), w.into(), dx.into()];
    let _label = gpu.profile_label(|| label("input grad", p), flops(p));
    gpu.dispatch(
        &INPUT_GRAD,
        &[],
        &params(p),
        &b,
        INPUT_GRAD.groups_for(p.x_len()),
    )
}

/// dw from x and dy: one workgroup per weight, a fixed-order tree over N·OH·OW.
pub fn dwconv2d_weight_grad(
    gpu: &Gpu,
    p: &DwConvParams,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    dw: &GpuBuffer,
) -> Result<()> {
    let b = [x.into(), dy.into(), dw.into()];
    let _label = gpu.profile_label(|| label("weight grad", p), flops(p));
    gpu.dispatch(&WEIGHT_GRAD, &[], &params(p), &b, grid(p.w_len() as u32))
}
