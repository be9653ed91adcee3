//! AutoReP: which ReLUs to keep under a budget, and what replaces the others.
//!
//! - [`dapa`]: distribution-aware polynomial fits of ReLU (closed forms, refit schedule).
//! - [`replace`]: turning a model's sites into gated sites, the per-forward mask update
//!   (hysteresis) and exact count, the budget penalty, DaPa refits, and SNL's α gates.

pub mod dapa;
pub mod replace;

pub use replace::{Granularity, Method, Polynomial, ReplaceConfig, Replacement};

use crate::{Error, Result};

/// A ReLU count as users write it: `12900`, `12.9k`, `12.9K` or `1.2m`.
pub fn parse_count(s: &str) -> Result<usize> {
    let t = s.trim();
    let (num, scale) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| {
        Error::Invalid(format!(
            "'{s}' is not a ReLU count: write e.g. 12900 or 12.9k"
        ))
    })?;
    if !v.is_finite() || v < 0.0 {
        return Err(Error::Invalid(format!(
            "a ReLU count must be non-negative, got '{s}'"
        )));
    }
    Ok((v * scale).round() as usize)
}
