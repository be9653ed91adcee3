//! Every WGSL file in `shaders/`, embedded at build time, each composed behind
//! `shaders/prelude.wgsl` (the helpers they share: WGSL has no includes).

use crate::pipelines::Shader;

macro_rules! shader {
    ($id:ident, $file:literal) => {
        shader!($id, $file, "");
    };
    ($id:ident, $file:literal, $enables:literal) => {
        pub const $id: Shader = Shader {
            name: $file,
            enables: $enables,
            source: concat!(
                include_str!("../../shaders/prelude.wgsl"),
                include_str!(concat!("../../shaders/", $file))
            ),
        };
    };
}

shader!(ELEMENTWISE, "elementwise.wgsl");
shader!(REDUCE, "reduce.wgsl");
shader!(LOSS, "loss.wgsl");
shader!(GEMM, "gemm.wgsl");
shader!(CONV, "conv.wgsl");
shader!(DWCONV, "dwconv.wgsl");
shader!(NORM, "norm.wgsl");
shader!(POOL, "pool.wgsl");
shader!(OPTIM, "optim.wgsl");
shader!(GATE, "gate.wgsl");
shader!(AUGMENT, "augment.wgsl");
shader!(
    COOP_GEMM,
    "coop_gemm.wgsl",
    "enable wgpu_cooperative_matrix;\n"
);

/// All shaders, for validation tests and pipeline warm-up.
pub const ALL: &[Shader] = &[
    ELEMENTWISE,
    REDUCE,
    LOSS,
    GEMM,
    CONV,
    DWCONV,
    NORM,
    POOL,
    OPTIM,
    GATE,
    AUGMENT,
];

/// Shaders on cooperative matrices (tensor cores): compiled in the f16 variant only, and only
/// on adapters that report 16x16x16 f16 x f16 -> f32 (not in [`ALL`], which every test compiles
/// in both variants).
pub const COOP: &[Shader] = &[COOP_GEMM];
