//! The per-dispatch parameter blocks: one `#[repr(C)]` struct per WGSL uniform struct, field
//! for field (names, scalar types, offsets). Launchers fill these by name; the contract test
//! (`tests/contract.rs`) reads every shader with naga and checks each struct against the WGSL
//! declaration, so a field added, renamed, retyped or moved on one side alone fails a test
//! instead of mis-binding silently.

use crate::pipelines::Shader;
use crate::shaders;

/// The scalar types a uniform field may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    U32,
    F32,
}

/// A Rust type that stands for a WGSL scalar.
pub trait WgslScalar {
    const SCALAR: Scalar;
}
impl WgslScalar for u32 {
    const SCALAR: Scalar = Scalar::U32;
}
impl WgslScalar for f32 {
    const SCALAR: Scalar = Scalar::F32;
}

/// One field of a uniform struct: its name, scalar type and byte offset.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub scalar: Scalar,
    pub offset: usize,
}

/// What a uniform struct looks like, for the contract test.
#[derive(Debug, Clone, Copy)]
pub struct UniformLayout {
    /// The WGSL file and struct it mirrors.
    pub shader: Shader,
    pub wgsl_name: &'static str,
    pub fields: &'static [Field],
    pub size: usize,
}

/// A parameter block a kernel reads from binding 0.
pub trait Uniform: bytemuck::Pod {
    const LAYOUT: UniformLayout;
}

macro_rules! uniform {
    ($(#[$m:meta])* $name:ident = $shader:ident :: $wgsl:ident {
        $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)?
    }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t),*
        }
        impl Uniform for $name {
            const LAYOUT: UniformLayout = UniformLayout {
                shader: shaders::$shader,
                wgsl_name: stringify!($wgsl),
                fields: &[$(Field {
                    name: stringify!($f),
                    scalar: <$t as WgslScalar>::SCALAR,
                    offset: core::mem::offset_of!($name, $f),
                }),*],
                size: core::mem::size_of::<$name>(),
            };
        }
    };
}

uniform!(
    /// `elementwise.wgsl`'s `Params`.
    ElementwiseUniform = ELEMENTWISE::Params {
        n: u32,
        /// bias_add and expand_mid: elements per channel (H·W, or 1 for a matrix).
        inner: u32,
        channels: u32,
        _pad: u32,
        alpha: f32,
        beta: f32,
    }
);

uniform!(
    /// `reduce.wgsl`'s `Params`.
    ReduceUniform = REDUCE::Params {
        n: u32,
        len: u32,
        inner: u32,
        _pad: u32,
        alpha: f32,
    }
);

uniform!(
    /// `loss.wgsl`'s `Params` (cross-entropy).
    CeUniform = LOSS::Params {
        rows: u32,
        classes: u32,
        _pad0: u32,
        _pad1: u32,
        smoothing: f32,
    }
);

uniform!(
    /// `loss.wgsl`'s `KdParams` (distillation).
    KdUniform = LOSS::KdParams {
        rows: u32,
        classes: u32,
        _pad0: u32,
        _pad1: u32,
        temperature: f32,
    }
);

uniform!(
    /// `gemm.wgsl`'s `Params`.
    GemmUniform = GEMM::Params {
        m: u32,
        n: u32,
        k: u32,
        /// 1: add bias\[col\]; 2: accumulate into C.
        flags: u32,
        a_off: u32,
        a_rs: u32,
        a_cs: u32,
        a_bs: u32,
        b_off: u32,
        b_rs: u32,
        b_cs: u32,
        b_bs: u32,
        c_off: u32,
        c_rs: u32,
        c_bs: u32,
        bias_off: u32,
        alpha: f32,
    }
);

uniform!(
    /// `conv.wgsl`'s `Params`.
    ConvUniform = CONV::Params {
        /// 0: forward, 1: input gradient, 2: weight gradient.
        mode: u32,
        m: u32,
        n: u32,
        k: u32,
        batch: u32,
        cin: u32,
        h: u32,
        w: u32,
        cout: u32,
        oh: u32,
        ow: u32,
        kh: u32,
        kw: u32,
        stride: u32,
        pad: u32,
        /// 2: accumulate into the output.
        flags: u32,
        a_off: u32,
        b_off: u32,
        c_off: u32,
        /// K elements per split.
        k_split: u32,
        /// Elements between split planes.
        plane: u32,
    }
);

uniform!(
    /// `dwconv.wgsl`'s `Params`.
    DwConvUniform = DWCONV::Params {
        n: u32,
        c: u32,
        h: u32,
        w: u32,
        oh: u32,
        ow: u32,
        kh: u32,
        kw: u32,
        stride: u32,
        pad: u32,
    }
);

uniform!(
    /// `norm.wgsl`'s `Params`.
    NormUniform = NORM::Params {
        n: u32,
        c: u32,
        hw: u32,
        affine: u32,
        eps: f32,
        momentum: f32,
        /// The reductions: workgroups per channel.
        split: u32,
    }
);

uniform!(
    /// `bn_act.wgsl`'s `Params`.
    BnActUniform = BN_ACT::Params {
        n: u32,
        c: u32,
        hw: u32,
        /// RESIDUAL | TRAIN | WRITE_DY (bn_act.wgsl's constants).
        flags: u32,
        act: u32,
        group: u32,
        stride: u32,
        gates: u32,
        eps: f32,
        s1: f32,
        s2: f32,
        clip2: f32,
        split: u32,
        parts: u32,
    }
);

uniform!(
    /// `pool.wgsl`'s `Params`.
    PoolUniform = POOL::Params {
        x_len: u32,
        y_len: u32,
        h: u32,
        w: u32,
        oh: u32,
        ow: u32,
        k: u32,
        stride: u32,
        pad: u32,
    }
);

uniform!(
    /// `optim.wgsl`'s `Params`.
    OptimUniform = OPTIM::Params {
        n: u32,
        /// FIRST | NESTEROV | DECOUPLED (optim.wgsl's constants).
        flags: u32,
        len: u32,
        _pad: u32,
        lr: f32,
        weight_decay: f32,
        grad_scale: f32,
        momentum: f32,
        dampening: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        bc1: f32,
        bc2: f32,
        alpha: f32,
        ln_beta1: f32,
        ln_beta2: f32,
    }
);

uniform!(
    /// `gate.wgsl`'s `Params`.
    GateUniform = GATE::Params {
        n: u32,
        chw: u32,
        hw: u32,
        group: u32,
        batch: u32,
        channels: u32,
        gates: u32,
        budget: u32,
        s1: f32,
        s2: f32,
        penalty: f32,
        tau: f32,
        mode: u32,
        weight: u32,
        clip2: f32,
    }
);

uniform!(
    /// `augment.wgsl`'s `Params`.
    AugmentUniform = AUGMENT::Params {
        channels: u32,
        height: u32,
        width: u32,
        pad: u32,
        batch: u32,
        count: u32,
        n: u32,
        first: u32,
        last: u32,
        byte_base: u32,
        _pad0: u32,
        _pad3: u32,
        mean0: f32,
        mean1: f32,
        mean2: f32,
        _pad1: f32,
        std0: f32,
        std1: f32,
        std2: f32,
        _pad2: f32,
    }
);

uniform!(
    /// `coop_peak.wgsl`'s `Params`.
    CoopPeakUniform = COOP_PEAK::Params {
        iters: u32,
        /// 1: alternate the two copies of the operands (see the shader).
        mask: u32,
        _pad0: u32,
        _pad1: u32,
    }
);
