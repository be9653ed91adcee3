//! The engine's tuning knobs (environment variables, README "Tuning knobs"), each read where it
//! acts (here, but for `AUTOREP_FUSE`, which the nn layer reads: listed here so that one table
//! holds them all); [`check_env`] refuses a value none of those readers would take, so that a
//! mistyped knob (`AUTOREP_COOP=off`) is an error rather than silently the default.

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
    ("AUTOREP_CPU_COLS_BYTES", Form::Count { positive: true }),
    ("AUTOREP_WGRAD_SPLIT", Form::Pair),
    ("AUTOREP_CONV_TILE", Form::TileRows),
];

/// The knobs' names.
pub fn names() -> impl Iterator<Item = &'static str> {
    KNOBS.iter().map(|(n, _)| *n)
}

/// Every knob that is set holds a value its reader takes (an empty one counts as unset).
pub fn check_env() -> Result<()> {
    for &(name, form) in KNOBS {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        let value = value.to_string_lossy().trim().to_string();
        if value.is_empty() || accepts(form, &value) {
            continue;
        }
        return Err(KernelError::Knob {
            name,
            value,
            expected: expected(form),
        });
    }
    Ok(())
}

fn accepts(form: Form, v: &str) -> bool {
    let count = |s: &str| s.trim().parse::<u64>().ok();
    match form {
        Form::Switch => v == "0" || v == "1",
        Form::Coop => v == "0" || v == "1" || v == "emulate",
        Form::Count { positive } => count(v).is_some_and(|n| n > 0 || !positive),
        Form::Pair => v
            .split_once(',')
            .is_some_and(|(f, k)| count(f).is_some() && count(k).is_some()),
        Form::TileRows => count(v).is_some_and(|r| crate::launch::simt_tile_rows().contains(&r)),
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
    }
}
