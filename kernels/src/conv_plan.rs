//! How one convolution pass runs: its tile, its K splits and whether its K loop is pipelined.
//! The launchers pick a plan by rule (tile costs and a split target measured on an H100, see
//! `launch::conv`); a plan measured on this adapter (`launch::tune_conv_pass`, the `autorep tune`
//! command) replaces the rule for its exact pass. Plans travel as a text file, one pass per
//! line, stamped with the adapter they were measured on.

use crate::error::{KernelError, Result};
use crate::params::ConvParams;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The three passes of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvPass {
    Forward,
    InputGrad,
    WeightGrad,
}

impl ConvPass {
    pub const ALL: [ConvPass; 3] = [Self::Forward, Self::InputGrad, Self::WeightGrad];

    pub fn name(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::InputGrad => "input_grad",
            Self::WeightGrad => "weight_grad",
        }
    }
}

/// The kernel that runs a pass (shaders/conv.wgsl and coop_conv.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tile {
    /// The SIMT tiles, by rows per tile, 64 columns wide.
    Rows256,
    Rows128,
    Rows64,
    Rows32,
    /// The narrow SIMT tile: 256 rows by 32 columns.
    Cols32,
    /// Tensor cores, 128 rows by 64 columns; f16 operands on an adapter that has them.
    Coop,
    /// Tensor cores, 128 by 128 (passes with at least 128 output columns).
    CoopWide,
    /// The direct input gradient of a stem (at most four input channels).
    Direct,
}

impl Tile {
    const NAMES: [(Tile, &'static str); 8] = [
        (Tile::Rows256, "rows256"),
        (Tile::Rows128, "rows128"),
        (Tile::Rows64, "rows64"),
        (Tile::Rows32, "rows32"),
        (Tile::Cols32, "cols32"),
        (Tile::Coop, "coop"),
        (Tile::CoopWide, "coop_wide"),
        (Tile::Direct, "direct"),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(t, _)| *t == self).unwrap().1
    }

    fn parse(s: &str) -> Option<Tile> {
        Self::NAMES.iter().find(|(_, n)| *n == s).map(|(t, _)| *t)
    }

    pub fn is_coop(self) -> bool {
        matches!(self, Tile::Coop | Tile::CoopWide)
    }
}

/// How a pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvPlan {
    pub tile: Tile,
    /// K ranges summed into partial planes, then reduced in a fixed order (1 = no split).
    pub splits: usize,
    /// The K loop loads the next slice during the current one's multiply-adds (the tiles'
    /// PREFETCH constant).
    pub prefetch: bool,
    /// The SIMT tiles store their outputs through workgroup memory, consecutive invocations
    /// writing consecutive rows of a column (the STAGED_STORE constant of shaders/conv.wgsl).
    pub staged: bool,
}

impl ConvPlan {
    /// The plan's kernel and its settings, without the split.
    pub fn kind(&self) -> (Tile, bool, bool) {
        (self.tile, self.prefetch, self.staged)
    }
}

impl std::fmt::Display for ConvPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tile={} splits={} prefetch={} staged={}",
            self.tile.name(),
            self.splits,
            u8::from(self.prefetch),
            u8::from(self.staged)
        )
    }
}

/// One pass of one convolution shape (batch included) in one activation precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvKey {
    pub pass: ConvPass,
    pub shape: ConvParams,
    /// The activations are f16 (else f32).
    pub f16: bool,
}

impl std::fmt::Display for ConvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.shape;
        write!(
            f,
            "{} n{} cin{} h{} w{} cout{} k{}x{} s{} p{} {}",
            self.pass.name(),
            p.n,
            p.cin,
            p.h,
            p.w,
            p.cout,
            p.kh,
            p.kw,
            p.stride,
            p.pad,
            if self.f16 { "f16" } else { "f32" }
        )
    }
}

/// Measured plans of one adapter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvPlans {
    /// The adapter they were measured on ([`crate::AdapterReport::fingerprint`]).
    pub adapter: String,
    pub plans: HashMap<ConvKey, ConvPlan>,
}

const HEADER: &str = "# autorep conv plans";

impl ConvPlans {
    pub fn new(adapter: &str) -> Self {
        ConvPlans {
            adapter: adapter.to_string(),
            plans: HashMap::new(),
        }
    }

    /// The file's text: a header, the adapter, then one pass per line in a fixed order.
    pub fn to_text(&self) -> String {
        let mut keys: Vec<_> = self.plans.keys().collect();
        keys.sort();
        let mut out = format!(
            "{HEADER} (written by `autorep tune`)\nadapter = {}\n",
            self.adapter
        );
        for k in keys {
            let _ = writeln!(out, "{k} : {}", self.plans[k]);
        }
        out
    }

    /// Parse [`ConvPlans::to_text`]'s format; `source` names the file in errors.
    pub fn parse(text: &str, source: &str) -> Result<ConvPlans> {
        let bad = |line: usize, message: String| KernelError::Plans {
            file: source.to_string(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        match lines.next() {
            Some((_, l)) if l.starts_with(HEADER) => {}
            _ => {
                return Err(bad(
                    1,
                    format!("not a plans file (it must start with '{HEADER}')"),
                ))
            }
        }
        let mut plans = ConvPlans::default();
        for (n, line) in lines {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(a) = line.strip_prefix("adapter =") {
                plans.adapter = a.trim().to_string();
                continue;
            }
            let (key, plan) = line
                .split_once(" : ")
                .ok_or_else(|| bad(n, "expected 'PASS SHAPE DTYPE : PLAN'".into()))?;
            let key = parse_key(key).map_err(|m| bad(n, m))?;
            let plan = parse_plan(plan).map_err(|m| bad(n, m))?;
            plans.plans.insert(key, plan);
        }
        if plans.adapter.is_empty() {
            return Err(bad(2, "no 'adapter = ...' line".into()));
        }
        Ok(plans)
    }
}

/// `token` as `prefix` then a number (at most 2^20: no convolution dimension comes near it,
/// and the shape's sizes then fit the shaders' u32 arithmetic without overflow here).
fn number(token: &str, prefix: &str) -> std::result::Result<usize, String> {
    token
        .strip_prefix(prefix)
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&v| v <= MAX_DIM)
        .ok_or_else(|| format!("expected '{prefix}N' with N up to {MAX_DIM}, found '{token}'"))
}

const MAX_DIM: usize = 1 << 20;

/// "forward n128 cin64 h32 w32 cout128 k3x3 s2 p1 f16".
fn parse_key(s: &str) -> std::result::Result<ConvKey, String> {
    let t: Vec<&str> = s.split_whitespace().collect();
    let [pass, n, cin, h, w, cout, k, stride, pad, dtype] = t[..] else {
        return Err(format!(
            "expected 'PASS nN cinN hN wN coutN kHxW sN pN f16|f32', found '{s}'"
        ));
    };
    let pass = ConvPass::ALL
        .into_iter()
        .find(|p| p.name() == pass)
        .ok_or_else(|| format!("unknown pass '{pass}': forward, input_grad or weight_grad"))?;
    let (kh, kw) = k
        .strip_prefix('k')
        .and_then(|k| k.split_once('x'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .filter(|&(a, b): &(usize, usize)| a <= MAX_DIM && b <= MAX_DIM)
        .ok_or_else(|| format!("expected 'kHxW', found '{k}'"))?;
    let f16 = match dtype {
        "f16" => true,
        "f32" => false,
        other => return Err(format!("expected f16 or f32, found '{other}'")),
    };
    let shape = ConvParams {
        n: number(n, "n")?,
        cin: number(cin, "cin")?,
        h: number(h, "h")?,
        w: number(w, "w")?,
        cout: number(cout, "cout")?,
        kh,
        kw,
        stride: number(stride, "s")?,
        pad: number(pad, "p")?,
    };
    let dims = [
        shape.n,
        shape.cin,
        shape.cout,
        shape.kh,
        shape.kw,
        shape.stride,
    ];
    if dims.contains(&0) || shape.h + 2 * shape.pad < shape.kh || shape.w + 2 * shape.pad < shape.kw
    {
        return Err(format!("not a valid convolution: '{s}'"));
    }
    Ok(ConvKey { pass, shape, f16 })
}

fn flag(key: &str, v: &str) -> std::result::Result<bool, String> {
    match v {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(format!("{key}='{v}': 0 or 1")),
    }
}

fn parse_plan(s: &str) -> std::result::Result<ConvPlan, String> {
    let mut plan = ConvPlan {
        tile: Tile::Rows256,
        splits: 0,
        prefetch: false,
        staged: false,
    };
    let mut seen_tile = false;
    for field in s.split_whitespace() {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, found '{field}'"))?;
        match k {
            "tile" => {
                plan.tile = Tile::parse(v).ok_or_else(|| format!("unknown tile '{v}'"))?;
                seen_tile = true;
            }
            "splits" => {
                plan.splits = v
                    .parse()
                    .ok()
                    .filter(|&n| n <= MAX_DIM)
                    .ok_or_else(|| format!("splits='{v}'"))?
            }
            "prefetch" => plan.prefetch = flag(k, v)?,
            "staged" => plan.staged = flag(k, v)?,
            _ => return Err(format!("unknown field '{k}'")),
        }
    }
    if !seen_tile || plan.splits == 0 {
        return Err("a plan needs tile=NAME and splits=N (N >= 1)".into());
    }
    Ok(plan)
}

/// The plans a device runs by, and the passes it has launched while collecting them.
#[derive(Default)]
pub(crate) struct PlanState {
    pub tuned: ConvPlans,
    pub seen: Option<Vec<ConvKey>>,
}
