//! AutoReP: which ReLUs to keep under a budget, and what replaces the others.
//!
//! - [`dapa`]: distribution-aware polynomial fits of ReLU (closed forms, refit schedule).
//! - [`replace`]: turning a model's sites into gated sites, the per-forward mask update
//!   (hysteresis) and exact count, the budget penalty, DaPa refits, and SNL's α gates.

pub mod budget;
pub mod dapa;
pub mod replace;

pub use budget::{count_label, parse_count, Budget};
pub use replace::{
    sites_of, Granularity, Method, Polynomial, ReplaceConfig, Replacement, SNL_THRESHOLD,
};
