//! The engine's tuning knobs (environment variables, README "Tuning knobs"): one table of
//! their forms, the getters every reader calls where the knob acts ([`switch`], [`count`],
//! [`pair`], [`coop`]; `AUTOREP_FUSE` is read by the nn layer), and [`check_env`], which the
//! CLI runs first, so that a value the getters would not parse (`AUTOREP_COOP=off`) is an error
//! rather than silently the default.

use crate::error::{KernelError, Result};

/// What a knob accepts.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `0` or `1`.
    Switch,
    /// `0`, `1` or `emulate` (AUTOREP_COOP).
    Coop,
    /// A whole number (`positive`: above 0).
    Count { positive: bool },
    /// `FACTOR,MIN_K`: two whole numbers.
    Pair,
    /// One of the SIMT conv tiles' row counts.
    TileRows,
}

const KNOBS: &[(&str, Form)] = &[
    ("AUTOREP_COOP", Form::Coop),
    ("AUTOREP_COOP_WIDE", Form::Switch),
    ("AUTOREP_COOP_DIRECT", Form::Switch),
    ("AUTOREP_FUSE", Form::Switch),
    ("AUTOREP_PREFETCH", Form::Switch),
    ("AUTOREP_CHECKED_SHADERS", Form::Switch),
    ("AUTOREP_SPLIT_TARGET", Form::Count { positive: false }),
    ("AUTOREP_BN_PART", Form::Count { positive: true }),
    ("AUTOREP_CPU_COLS_BYTES", Form::Count { positive: false }),
    ("AUTOREP_WGRAD_SPLIT", Form::Pair),
    ("AUTOREP_CONV_TILE", Form::TileRows),
];

/// The knobs' names.
pub fn names() -> impl Iterator<Item = &'static str> {
    KNOBS.iter().map(|(n, _)| *n)
}

/// A knob's value, trimmed; None where it is unset or empty.
fn raw(name: &str) -> Option<String> {
    let v = std::env::var_os(name)?.to_string_lossy().trim().to_string();
    (!v.is_empty()).then_some(v)
}

fn parse_count(v: &str) -> Option<u64> {
    v.trim().parse().ok()
}

fn parse_switch(v: &str) -> Option<bool> {
    match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

fn parse_pair(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once(',')?;
    Some((parse_count(a)?, parse_count(b)?))
}

fn parse_coop(v: &str) -> Option<CoopKnob> {
    match v {
        "emulate" => Some(CoopKnob::Emulate),
        v => parse_switch(v).map(|on| if on { CoopKnob::On } else { CoopKnob::Off }),
    }
}

/// A `0`/`1` knob; None where it is unset or holds anything else (which [`check_env`]
/// refuses before a command starts).
pub fn switch(name: &str) -> Option<bool> {
    parse_switch(&raw(name)?)
}

/// A whole-number knob, as [`switch`].
pub fn count(name: &str) -> Option<u64> {
    parse_count(&raw(name)?)
}

/// A `FACTOR,MIN_K` knob, as [`switch`].
pub fn pair(name: &str) -> Option<(u64, u64)> {
    parse_pair(&raw(name)?)
}

/// `AUTOREP_COOP`: the tensor-core path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoopKnob {
    Off,
    On,
    Emulate,
}

/// `AUTOREP_COOP`, as [`switch`].
pub fn coop() -> Option<CoopKnob> {
    parse_coop(&raw("AUTOREP_COOP")?)
}

/// Every knob that is set holds a value its reader takes (an empty one counts as unset).
pub fn check_env() -> Result<()> {
    for &(name, form) in KNOBS {
        let Some(value) = raw(name) else { continue };
        if !accepts(form, &value) {
            return Err(KernelError::Knob {
                name,
                value,
                expected: expected(form),
            });
        }
    }
    Ok(())
}

/// Whether `v` is a value of `form`: what the getters above parse.
fn accepts(form: Form, v: &str) -> bool {
    match form {
        Form::Switch => parse_switch(v).is_some(),
        Form::Coop => parse_coop(v).is_some(),
        Form::Count { positive } => parse_count(v).is_some_and(|n| n > 0 || !positive),
        Form::Pair => parse_pair(v).is_some(),
        Form::TileRows => {
            parse_count(v).is_some_and(|r| crate::launch::simt_tile_rows().contains(&r))
        }
    }
}

fn expected(form: Form) -> String {
    match form {
        Form::Switch => "0 or 1".into(),
        Form::Coop => {
            "0 (SIMT tiles), 1 (tensor cores where the adapter has them) or emulate".into()
        }
        Form::Count { positive: false } => "a whole number".into(),
        Form::Count { positive: true } => "a whole number above 0".into(),
        Form::Pair => "FACTOR,MIN_K, two whole numbers".into(),
        Form::TileRows => {
            let rows: Vec<String> = crate::launch::simt_tile_rows()
                .iter()
                .map(u64::to_string)
                .collect();
            format!("one of {}", rows.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_takes_what_its_reader_takes() {
        assert!(accepts(Form::Coop, "emulate") && !accepts(Form::Coop, "off"));
        assert!(accepts(Form::Switch, "0") && !accepts(Form::Switch, "true"));
        assert!(accepts(Form::Count { positive: false }, "0"));
        assert!(!accepts(Form::Count { positive: true }, "0"));
        assert!(!accepts(Form::Count { positive: false }, "4M"));
        assert!(accepts(Form::Pair, "4, 128") && !accepts(Form::Pair, "4"));
        assert!(accepts(Form::TileRows, "64") && !accepts(Form::TileRows, "48"));
        assert_eq!(expected(Form::TileRows), "one of 256, 128, 64, 32");
        assert_eq!(parse_pair("4, 128"), Some((4, 128)));
        assert_eq!(parse_coop("0"), Some(CoopKnob::Off));
    }
}
