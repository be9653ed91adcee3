//! Whole experiments from a TOML file (`autorep run`) and budget sweeps (`autorep sweep`).
//!
//! An experiment file has an `[experiment]` table (name, out, model, dataset, data, seed,
//! batch, limit_train, limit_test) and optional stage tables run in this order, each in
//! `OUT/<stage>`: `[train]` (the all-ReLU baseline), `[replace]` (AutoReP or its identity
//! ablation), `[snl]` (the SNL baseline) and `[finetune]` (mask frozen). A stage table holds
//! exactly the options of its CLI command (the same typed configuration, the same defaults).
//! `replace` and `snl` start from train's best checkpoint unless they name a `baseline`;
//! `finetune` starts from replace's best (else snl's) unless it names `from`. Unknown keys and
//! wrong types are one-line errors naming the file, the line and the key. Relative paths are
//! relative to the working directory, as on the command line.

mod config;
mod plot;
pub mod report;
mod run;
mod sweep;

pub use crate::autorep::{count_label, Budget};
pub use crate::train::{default_data_dir, load_data};
pub use config::{Config, Experiment, STAGES};
pub use plot::sweep_svg;
pub use report::Row;
pub use run::{method, run, run_with_data, RunOptions, Summary};
pub use sweep::{sweep, sweep_dir, write_sweep, Given, SweepConfig};
