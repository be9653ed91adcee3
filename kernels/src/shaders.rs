//! Every WGSL file in `shaders/`, embedded at build time, each composed behind
//! `shaders/prelude.wgsl` (the helpers they share: WGSL has no includes).

use crate::pipelines::Shader;

macro_rules! shader {
    ($id:ident, $file:literal) => {
        shader!($id, $file, "", []);
    };
    // `parts`: files of shaders/parts/ composed between the prelude and the file, the halves
    // two shaders share.
    ($id:ident, $file:literal, $enables:literal, [$($part:literal),*]) => {
        pub const $id: Shader = Shader {
            name: $file,
            enables: $enables,
            source: concat!(
                include_str!("../../shaders/prelude.wgsl"),
                $(include_str!(concat!("../../shaders/parts/", $part)),)*
                include_str!(concat!("../../shaders/", $file))
            ),
        };
    };
}

shader!(ELEMENTWISE, "elementwise.wgsl");
shader!(REDUCE, "reduce.wgsl");
shader!(LOSS, "loss.wgsl");
shader!(GEMM, "gemm.wgsl", "", ["gemm_io.wgsl"]);
shader!(CONV, "conv.wgsl", "", ["conv_im2col.wgsl"]);
shader!(DWCONV, "dwconv.wgsl");
shader!(NORM, "norm.wgsl", "", ["channels.wgsl"]);
shader!(
    BN_ACT,
    "bn_act.wgsl",
    "",
    ["channels.wgsl", "gate_poly.wgsl"]
);
shader!(POOL, "pool.wgsl");
shader!(OPTIM, "optim.wgsl");
shader!(GATE, "gate.wgsl", "", ["gate_poly.wgsl"]);
shader!(AUGMENT, "augment.wgsl");
shader!(
    COOP_GEMM,
    "coop_gemm.wgsl",
    "enable wgpu_cooperative_matrix;\n",
    ["gemm_io.wgsl", "coop_tile.wgsl"]
);
shader!(
    COOP_CONV,
    "coop_conv.wgsl",
    "enable wgpu_cooperative_matrix;\n",
    ["conv_im2col.wgsl", "coop_tile.wgsl"]
);

shader!(
    COOP_PEAK,
    "coop_peak.wgsl",
    "enable wgpu_cooperative_matrix;\n",
    []
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
    BN_ACT,
    POOL,
    OPTIM,
    GATE,
    AUGMENT,
];

/// Shaders on cooperative matrices (tensor cores): compiled in the f16 variant only, and only
/// on adapters that report 16x16x16 f16 x f16 -> f32 (not in [`ALL`], which every test compiles
/// in both variants).
pub const COOP: &[Shader] = &[COOP_GEMM, COOP_CONV, COOP_PEAK];
