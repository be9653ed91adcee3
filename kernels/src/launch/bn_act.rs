use crate::error::Result;
use crate::params::{BnAct, BnShape, FusedAct};
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::recorder::grid;
use crate::uniforms::BnActUniform as U;
use crate::{Gpu, GpuBuffer};

type K = Kernel<U>;
const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> K {
    K::new(entry, bindings, [256, 1, 1])
}

const FOLD: K = kernel("bn_fold", &[Read, Read, Read, Read, ReadWrite]);
const FORWARD: K = kernel("bn_act_forward", &[Read, Read, Read, Read, Read, ReadWrite]);
const STATS: K = kernel("bn_act_stats", &[Read, Read, Read, Read, Read, ReadWrite]);
const BACKWARD_REDUCE: K = kernel(
    "bn_act_backward_reduce",
    &[Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
);
// The finishing pass binds coef and sums alone.
const BACKWARD_REDUCE_FINISH: K = kernel("bn_act_backward_reduce_finish", &[Read, ReadWrite]);
const BACKWARD_INPUT: K = kernel(
    "bn_act_backward_input",
    &[Read, Read, Read, Read, Read, Read, Read, ReadWrite],
);
const GRAD_MASK: K = kernel(
    "bn_act_grad_mask",
    &[Read, Read, Read, Read, Read, Read, ReadWrite],
);

pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    FOLD.entry,
    FORWARD.entry,
    STATS.entry,
    BACKWARD_REDUCE.entry,
    BACKWARD_REDUCE_FINISH.entry,
    BACKWARD_INPUT.entry,
    GRAD_MASK.entry,
];

// bn_act.wgsl's flag bits and activation codes.
const RESIDUAL: u32 = 1;
const TRAIN: u32 = 2;
const WRITE_DY: u32 = 4;

fn params(a: &BnAct, extra: u32) -> U {
    a.check();
    let mut u = U {
        n: a.s.n as u32,
        c: a.s.channels as u32,
        hw: a.s.hw as u32,
        flags: extra | if a.residual { RESIDUAL } else { 0 } | if a.train { TRAIN } else { 0 },
        act: 0,
        group: 1,
        stride: a.stride() as u32,
        gates: 0,
        eps: a.eps,
        s1: 0.0,
        s2: 0.0,
        clip2: 0.0,
        split: a.s.split() as u32,
        parts: a.parts_offset() as u32,
    };
    match a.act {
        FusedAct::Relu => {}
        FusedAct::Silu => u.act = 1,
        FusedAct::Gate(g) => {
            u.act = 2;
            u.group = g.group() as u32;
            u.gates = g.gates() as u32;
            (u.s1, u.s2, u.clip2) = (g.s1, g.s2, g.clip2);
        }
    }
    u
}

/// The operands every entry point but [`bn_fold`] reads at bindings 1–5: x, r, fold, mask,
/// coef. Absent ones are bound to a stand-in the kernel does not read.
pub struct BnActInputs<'a> {
    pub x: &'a GpuBuffer,
    /// The residual (when `BnAct::residual`).
    pub r: Option<&'a GpuBuffer>,
    /// [γ·invstd | β | μ | invstd] (4C) from [`bn_fold`].
    pub fold: &'a GpuBuffer,
    /// The gate's mask and coefficients (when the activation is a gate).
    pub gate: Option<(&'a GpuBuffer, &'a GpuBuffer)>,
}

impl<'a> BnActInputs<'a> {
    fn bind(&self) -> [crate::BufRef<'a>; 5] {
        let (m, c) = self.gate.unwrap_or((self.fold, self.fold));
        [
            self.x.into(),
            self.r.unwrap_or(self.x).into(),
            self.fold.into(),
            m.into(),
            c.into(),
        ]
    }
}

/// fold = [γ·invstd | β | μ | invstd] per channel, invstd = 1/sqrt(var + eps).
#[allow(clippy::too_many_arguments)]
pub fn bn_fold(
    gpu: &Gpu,
    s: BnShape,
    eps: f32,
    mean: &GpuBuffer,
    var: &GpuBuffer,
    gamma: &GpuBuffer,
    beta: &GpuBuffer,
    fold: &GpuBuffer,
) -> Result<()> {
    let a = BnAct {
        s,
        eps,
        residual: false,
        train: false,
        act: FusedAct::Relu,
    };
    let binds = [
        mean.into(),
        var.into(),
        gamma.into(),
        beta.into(),
        fold.into(),
    ];
    gpu.dispatch(
        &FOLD,
        &[],
        &params(&a, 0),
        &binds,
        FOLD.groups_for(s.channels),
    )
}

/// z = act(BN(x) (+ r)), one invocation per element.
pub fn bn_act_forward(gpu: &Gpu, a: &BnAct, inp: &BnActInputs, z: &GpuBuffer) -> Result<()> {
    let [b1, b2, b3, b4, b5] = inp.bind();
    gpu.dispatch(
        &FORWARD,
        &[],
        &params(a, 0),
        &[b1, b2, b3, b4, b5, z.into()],
        FORWARD.groups_for(a.s.len()),
    )
}

/// Per-channel mean and biased variance of the activation's input s = BN(x) (+ r): the
/// statistics AutoReP's DaPa fits its polynomials to (each channel split over workgroups,
/// then the parts combined).
pub fn bn_act_stats(
    gpu: &Gpu,
    a: &BnAct,
    inp: &BnActInputs,
    mean: &GpuBuffer,
    var: &GpuBuffer,
) -> Result<()> {
    let [b1, b2, b3, b4, b5] = inp.bind();
    let part = super::norm::parts(gpu, a.s, 2)?;
    gpu.dispatch(
        &STATS,
        &[],
        &params(a, 0),
        &[b1, b2, b3, b4, b5, (&part).into()],
        grid((a.s.channels * a.s.split()) as u32),
    )?;
    super::norm::bn_stats_finish(gpu, a.s, &part, mean, var)
}

/// sums = [dβ | dγ | dcoef] (sections at 0, stride, 2·stride; dcoef only for a gate) from
/// dz = `g`; with `dy`, dL/ds is also stored there (the residual's gradient). Each channel
/// split over workgroups, whose partial sums (after the sections) are then added up.
pub fn bn_act_backward_reduce(
    gpu: &Gpu,
    a: &BnAct,
    inp: &BnActInputs,
    g: &GpuBuffer,
    sums: &GpuBuffer,
    dy: Option<&GpuBuffer>,
    scratch: &GpuBuffer,
) -> Result<()> {
    let [b1, b2, b3, b4, b5] = inp.bind();
    let flags = if dy.is_some() { WRITE_DY } else { 0 };
    // Unwritten without `dy`, but binding 8 must be a writable buffer of the act type.
    let out = dy.unwrap_or(scratch);
    let prm = params(a, flags);
    let binds = [b1, b2, b3, b4, b5, g.into(), sums.into(), out.into()];
    let groups = grid((a.s.channels * a.s.split()) as u32);
    gpu.dispatch(&BACKWARD_REDUCE, &[], &prm, &binds, groups)?;
    let coef = inp.gate.map_or(inp.fold, |(_, c)| c);
    let finish = BACKWARD_REDUCE_FINISH.groups_for(a.s.channels);
    let binds = [coef.into(), sums.into()];
    gpu.dispatch(&BACKWARD_REDUCE_FINISH, &[], &prm, &binds, finish)
}

/// dx from dz = `g` and the sums of [`bn_act_backward_reduce`], recomputing dL/ds.
pub fn bn_act_backward_input(
    gpu: &Gpu,
    a: &BnAct,
    inp: &BnActInputs,
    g: &GpuBuffer,
    sums: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let [b1, b2, b3, b4, b5] = inp.bind();
    gpu.dispatch(
        &BACKWARD_INPUT,
        &[],
        &params(a, 0),
        &[b1, b2, b3, b4, b5, g.into(), sums.into(), dx.into()],
        BACKWARD_INPUT.groups_for(a.s.len()),
    )
}

/// dm\[gate\] = Σ g·(ReLU(s) − P(s)) over the batch and the gate's pixels (a gate only).
pub fn bn_act_grad_mask(
    gpu: &Gpu,
    a: &BnAct,
    inp: &BnActInputs,
    g: &GpuBuffer,
    dm: &GpuBuffer,
) -> Result<()> {
    let gates = a.gate().map_or(0, |p| p.gates());
    let [b1, b2, b3, b4, b5] = inp.bind();
    gpu.dispatch(
        &GRAD_MASK,
        &[],
        &params(a, 0),
        &[b1, b2, b3, b4, b5, g.into(), dm.into()],
        GRAD_MASK.groups_for(gates),
    )
}
