//! ReLU budgets as users write them (`12900`, `12.9k`, `1.2m`) and as configs store them.

use crate::{Error, Result};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Counts above this are not exact in f64 arithmetic; no model has that many ReLUs.
const MAX_COUNT: f64 = (1u64 << 53) as f64;

/// A ReLU count as users write it: `12900`, `12.9k`, `12.9K` or `1.2m`. The value must be a
/// whole number of ReLUs (`0.4` or `1.23456k` are errors, not a silently rounded count).
pub fn parse_count(s: &str) -> Result<usize> {
    let t = s.trim();
    let (num, scale) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    let v: f64 = num.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "'{s}' is not a ReLU count: write e.g. 12900 or 12.9k"
        ))
    })?;
    if !v.is_finite() || v < 0.0 {
        return Err(Error::Invalid(format!(
            "a ReLU count must be a finite non-negative number, got '{s}'"
        )));
    }
    let count = v * scale;
    if count > MAX_COUNT {
        return Err(Error::Invalid(format!(
            "'{s}' ReLUs is more than any model has"
        )));
    }
    if (count - count.round()).abs() > 1e-6 * count.max(1.0) {
        return Err(Error::Invalid(format!(
            "'{s}' is not a whole number of ReLUs ({count}): a budget counts ReLUs, e.g. 12900 or 12.9k"
        )));
    }
    Ok(count.round() as usize)
}

/// `v` with a k or m suffix and at most three significant decimals.
pub fn count_label(v: f64) -> String {
    let (x, suffix) = if v >= 1e6 {
        (v / 1e6, "m")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let mut s = format!("{x:.3}");
    while s.contains('.') && (s.ends_with('0') || s.ends_with('.')) {
        s.pop();
    }
    format!("{s}{suffix}")
}

/// A ReLU budget: written as a string such as `"12.9k"` or an integer, stored as the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Budget {
    pub relus: usize,
}

impl Budget {
    pub fn parse(s: &str) -> Result<Budget> {
        Ok(Budget {
            relus: parse_count(s)?,
        })
    }

    /// The budget as a short name: 5000 → `5k`, 12900 → `12.9k`, 1200000 → `1.2m`, 750 → `750`.
    pub fn label(&self) -> String {
        count_label(self.relus as f64)
    }
}

impl std::str::FromStr for Budget {
    type Err = Error;
    fn from_str(s: &str) -> Result<Budget> {
        Budget::parse(s)
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.relus)
    }
}

impl Serialize for Budget {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.relus as u64)
    }
}

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Budget, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Budget;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a ReLU count such as \"12.9k\" or 12900")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Budget, E> {
                Budget::parse(s).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Budget, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "a ReLU count must be non-negative, got {v}"
                    )));
                }
                Ok(Budget { relus: v as usize })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Budget, E> {
                Ok(Budget { relus: v as usize })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Budget, E> {
                Budget::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}
