//! Element types of activation buffers. Every shader is compiled in two variants that differ
//! only in the alias `act`: the storage type of the bindings that hold activations (and, under
//! mixed precision, the f16 copies of weights). Arithmetic stays f32 in both (loads widen,
//! stores round), so an f16 kernel is its f32 twin with f16 rounding at each store.

/// The element type a buffer holds. Buffers are f32 unless tagged otherwise; integer buffers
/// (labels, indices) count as 4-byte words, i.e. `F32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dtype {
    #[default]
    F32,
    F16,
}

impl Dtype {
    pub const fn bytes(self) -> u64 {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        }
    }

    /// The enable directive this variant needs (directives precede every declaration).
    pub const fn wgsl_enable(self) -> &'static str {
        match self {
            Dtype::F32 => "",
            Dtype::F16 => "enable f16;\n",
        }
    }

    /// The alias that makes a shader this variant, put in front of the prelude.
    pub const fn wgsl_alias(self) -> &'static str {
        match self {
            Dtype::F32 => "alias act = f32;\n",
            Dtype::F16 => "alias act = f16;\n",
        }
    }
}

/// Round f32 values to the nearest f16 and back (what an f16 store does to a value).
pub fn round_to_f16(values: &mut [f32]) {
    for v in values {
        *v = half::f16::from_f32(*v).to_f32();
    }
}

/// f32 values as f16 bit patterns, for uploads.
pub fn to_f16_bits(values: &[f32]) -> Vec<u16> {
    values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect()
}

/// f16 bit patterns (little-endian bytes) widened to f32, for readbacks.
pub fn from_f16_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
        .collect()
}
