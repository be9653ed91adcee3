//! Private-inference cost of a network whose activations mix ReLUs and polynomials (notes §7).
//!
//! ReLU count is only a proxy for private-inference cost: a ReLU needs a comparison protocol
//! (binary circuits or garbled circuits, many rounds or a large offline table), whereas a
//! degree-2 polynomial needs one Beaver-style multiplication. This module turns the counts that
//! AutoReP produces into communication, rounds and a latency estimate under a chosen protocol.
//!
//! The model covers the nonlinear layers only. Linear layers (HE convolutions in modern
//! protocols) are not negligible and are not counted here, so the figures are a lower bound on
//! the end-to-end cost and mainly serve to compare ReLU budgets under one protocol.
//!
//! Every constant is a public field so that a caller (the CLI) can override any of them.

use crate::error::{Error, Result};
use std::fmt::Write as _;

/// Default network bandwidth: 1 GB/s, a LAN.
pub const LAN_BANDWIDTH_BYTES_PER_S: f64 = 1e9;

/// Default round-trip time: 0.5 ms, a LAN.
pub const LAN_RTT_S: f64 = 5e-4;

/// Per-element costs of one private-inference protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    pub name: String,
    /// Online communication per ReLU, both directions, bytes.
    pub relu_bytes: f64,
    /// Communication rounds of one layer's ReLUs (all elements of a layer run in parallel).
    pub relu_rounds: f64,
    /// Single-thread compute per ReLU, microseconds.
    pub relu_us: f64,
    /// Online communication of one secret multiplication in a polynomial (a Horner step or
    /// x²), bytes. A polynomial costs [`Protocol::mults`] of them.
    pub mult_bytes: f64,
    /// Communication rounds of one multiplication; a layer's polynomials run in parallel, so
    /// a layer pays this once per multiplication of its degree.
    pub mult_rounds: f64,
    /// Single-thread compute per multiplication, microseconds.
    pub mult_us: f64,
    /// Offline (preprocessing) communication per ReLU, bytes.
    pub offline_relu_bytes: f64,
    /// Preprocessed material the client stores per ReLU until the inference, bytes (Delphi:
    /// the garbled circuit and its labels; storage, not traffic, bounds how many inferences
    /// a client can prepare).
    pub client_storage_relu_bytes: f64,
    /// The polynomial's coefficients are secret, as CrypTen holds every parameter: Horner's
    /// rule then takes d multiplications for degree d (two for the preset's degree 2, one
    /// for degree 1). Otherwise they are the server's plaintext, as in Delphi: only the
    /// powers of x need a multiplication (one for degree 2, none for degree 1: a linear map,
    /// whose cost is the linear layers', not counted here). The identity (SNL's linearised
    /// elements, the identity ablation) costs nothing either way.
    pub secret_coefficients: bool,
    /// Where the constants come from, and which are estimates.
    pub notes: String,
}

/// Names accepted by [`Protocol::by_name`].
pub const PRESET_NAMES: [&str; 2] = ["crypten", "delphi"];

impl Protocol {
    /// CrypTen two-party computation (additive sharing over ℤ_{2^64}, trusted-dealer triples):
    /// the engine AutoReP reports on.
    pub fn crypten() -> Self {
        Protocol {
            name: "CrypTen 2PC".into(),
            relu_bytes: 464.0,
            relu_rounds: 9.0,
            relu_us: 0.0,
            mult_bytes: 32.0,
            mult_rounds: 1.0,
            mult_us: 0.0,
            offline_relu_bytes: 0.0,
            client_storage_relu_bytes: 0.0,
            secret_coefficients: true,
            notes: "measured with CrypTen 0.4.1 (PyTorch 2.0.1), two parties on one machine, \
                    10,000 elements, bytes as CrypTen counts them for the whole system \
                    (RESULTS.md): ReLU 464 B per element in 9 rounds (a third-party figure of \
                    1.0 KB was for leaky ReLU); a multiplication of two secrets 32 B in 1 \
                    round, and a degree-2 polynomial with the model's coefficients (secret, as \
                    CrypTen encrypts every parameter) takes two, 64 B in 2 rounds, (x·a2 + a1)·x + a0, as the \
                    ONNX export writes it; triples come from a trusted dealer, so no offline \
                    traffic is counted; linear layers and compute time are not modelled"
                .into(),
        }
    }

    /// Delphi: garbled-circuit ReLUs over a 41-bit prime field, Beaver-triple quadratics.
    pub fn delphi() -> Self {
        Protocol {
            name: "Delphi".into(),
            relu_bytes: 0.0,
            relu_rounds: 1.0,
            relu_us: 52.0,
            mult_bytes: 32.0,
            mult_rounds: 1.0,
            mult_us: 0.0,
            offline_relu_bytes: 15_896.0,
            client_storage_relu_bytes: 18_248.0,
            secret_coefficients: false,
            notes: "ReLU: 15,896 B garbled circuit sent offline, 18,248 B client storage, \
                    52 µs single-thread evaluation (AMD EPYC 7502); the online label traffic per \
                    ReLU is not in the sources, so relu_bytes = 0 and relu_rounds = 1 are \
                    placeholders to override; quadratic: one Beaver triple, 4 field elements \
                    (32 B as u64) in 1 online round; the triples' offline generation (with \
                    homomorphic encryption) is not in the sources and is not counted, so the \
                    offline figure and the savings against all-ReLU are the ReLUs' alone"
                .into(),
        }
    }

    /// The secret multiplications of one degree-`degree` polynomial (0: the identity, free):
    /// d with secret coefficients (Horner's rule), d − 1 with plaintext ones (the powers of x).
    pub fn mults(&self, degree: usize) -> f64 {
        match (degree, self.secret_coefficients) {
            (0, _) => 0.0,
            (d, true) => d as f64,
            (d, false) => d as f64 - 1.0,
        }
    }

    /// A preset by name, case-insensitive.
    pub fn by_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "crypten" => Ok(Self::crypten()),
            "delphi" => Ok(Self::delphi()),
            _ => Err(Error::Invalid(format!(
                "unknown protocol '{name}': use one of {}",
                PRESET_NAMES.join(", ")
            ))),
        }
    }
}

/// Estimated private-inference cost of the nonlinear layers for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct CostReport {
    pub protocol: String,
    pub relus: u64,
    /// Replaced elements evaluated as polynomials of degree 1 or more.
    pub polys: u64,
    /// Replaced elements passed through (degree 0: SNL's linearised elements, the identity
    /// ablation): free.
    pub identities: u64,
    /// Online communication, bytes.
    pub comm_bytes: f64,
    /// Offline (preprocessing) communication, bytes.
    pub offline_bytes: f64,
    /// Preprocessed material the client stores for one inference, bytes.
    pub client_storage_bytes: f64,
    pub rounds: f64,
    /// Online latency: transfer + round trips + single-thread compute, seconds.
    pub latency_s: f64,
}

/// One activation site: the ReLUs it keeps among its activations, and the degree of the
/// polynomial that replaces the others (0: the identity, free in every protocol).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteCount {
    pub name: String,
    pub relus: usize,
    pub total: usize,
    pub degree: usize,
}

/// Cost of `relus` ReLUs spread over `layers_with_relu` layers and `polys` polynomials of
/// degree `degree` (0: the identity) spread over `layers_with_poly` layers, over a link of
/// `bandwidth_bytes_per_s` and `rtt_s` (see [`LAN_BANDWIDTH_BYTES_PER_S`], [`LAN_RTT_S`]).
///
/// Rounds are paid once per layer, not per element, because a layer's elements are evaluated
/// in parallel: a layer that keeps a single ReLU still pays the full ReLU round count. Compute
/// is counted single-threaded, as the protocols' per-element figures were measured.
#[allow(clippy::too_many_arguments)]
pub fn estimate(
    p: &Protocol,
    relus: u64,
    polys: u64,
    degree: usize,
    layers_with_relu: usize,
    layers_with_poly: usize,
    bandwidth_bytes_per_s: f64,
    rtt_s: f64,
) -> CostReport {
    let (r, q) = (relus as f64, polys as f64 * p.mults(degree));
    let comm_bytes = r * p.relu_bytes + q * p.mult_bytes;
    let rounds = layers_with_relu as f64 * p.relu_rounds
        + layers_with_poly as f64 * p.mult_rounds * p.mults(degree);
    let compute_s = (r * p.relu_us + q * p.mult_us) * 1e-6;
    let transfer_s = if comm_bytes == 0.0 {
        0.0
    } else {
        comm_bytes / bandwidth_bytes_per_s
    };
    CostReport {
        protocol: p.name.clone(),
        relus,
        polys: if degree == 0 { 0 } else { polys },
        identities: if degree == 0 { polys } else { 0 },
        comm_bytes,
        offline_bytes: r * p.offline_relu_bytes,
        client_storage_bytes: r * p.client_storage_relu_bytes,
        rounds,
        latency_s: transfer_s + rounds * rtt_s + compute_s,
    }
}

/// Cost of a network from its activation sites: the one place the ReLU and polynomial layer
/// counts are derived from a mask. Sites may differ in degree; each pays for its own.
pub fn estimate_sites(
    p: &Protocol,
    sites: &[SiteCount],
    bandwidth_bytes_per_s: f64,
    rtt_s: f64,
) -> CostReport {
    let none = estimate(p, 0, 0, 0, 0, 0, bandwidth_bytes_per_s, rtt_s);
    sites.iter().fold(none, |acc, s| {
        let polys = s.total.saturating_sub(s.relus);
        let one = estimate(
            p,
            s.relus as u64,
            polys as u64,
            s.degree,
            (s.relus > 0) as usize,
            (polys > 0) as usize,
            bandwidth_bytes_per_s,
            rtt_s,
        );
        CostReport {
            protocol: acc.protocol,
            relus: acc.relus + one.relus,
            polys: acc.polys + one.polys,
            identities: acc.identities + one.identities,
            comm_bytes: acc.comm_bytes + one.comm_bytes,
            offline_bytes: acc.offline_bytes + one.offline_bytes,
            client_storage_bytes: acc.client_storage_bytes + one.client_storage_bytes,
            rounds: acc.rounds + one.rounds,
            latency_s: acc.latency_s + one.latency_s,
        }
    })
}

/// Sites of a network with no mask at hand: `relus` of the model's ReLUs kept, assumed spread
/// over every site (so each site keeps some ReLUs and, unless all are kept, has polynomials
/// of degree `degree`).
pub fn assumed_sites(
    model_sites: &[(String, usize)],
    relus: usize,
    degree: usize,
) -> Vec<SiteCount> {
    let kept = apportion(&model_sites.iter().map(|s| s.1).collect::<Vec<_>>(), relus);
    model_sites
        .iter()
        .zip(kept)
        .map(|((name, n), kept)| SiteCount {
            name: name.clone(),
            relus: kept,
            total: *n,
            degree,
        })
        .collect()
}

/// `relus` spread over sites of `sizes` activations in proportion, summing to exactly `relus`
/// (largest remainders): at least one polynomial per site while `relus` leaves one for each,
/// and at least one ReLU per site while there are enough (a site of one activation keeps the
/// polynomial).
fn apportion(sizes: &[usize], relus: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    if relus >= total {
        return sizes.to_vec();
    }
    let floor = usize::from(relus >= sizes.len());
    let room = total.saturating_sub(sizes.len()) >= relus;
    let high = |n: usize| if room { n.saturating_sub(1) } else { n };
    let quota = |n: usize| relus as f64 * n as f64 / total.max(1) as f64;
    let mut kept: Vec<usize> = sizes
        .iter()
        .map(|&n| (quota(n).floor() as usize).clamp(floor.min(high(n)), high(n)))
        .collect();
    // Hand out (or take back) one at a time where the share lags (or leads) its quota most.
    loop {
        let sum: usize = kept.iter().sum();
        let lag = |i: usize| quota(sizes[i]) - kept[i] as f64;
        let pick = if sum < relus {
            (0..sizes.len())
                .filter(|&i| kept[i] < high(sizes[i]))
                .max_by(|&a, &b| lag(a).total_cmp(&lag(b)))
        } else if sum > relus {
            (0..sizes.len())
                .filter(|&i| kept[i] > floor)
                .min_by(|&a, &b| lag(a).total_cmp(&lag(b)))
        } else {
            return kept;
        };
        match (pick, sum < relus) {
            (Some(i), true) => kept[i] += 1,
            (Some(i), false) => kept[i] -= 1,
            (None, _) => return kept,
        }
    }
}

impl CostReport {
    /// A small human-readable block, one quantity per line.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let identities =
            (self.identities > 0).then(|| ("identities", group_digits(self.identities)));
        let rows = [
            Some(("protocol", self.protocol.clone())),
            Some(("ReLUs", group_digits(self.relus))),
            Some(("polynomials", group_digits(self.polys))),
            identities,
            Some(("online comm", human_bytes(self.comm_bytes))),
            Some(("offline comm", human_bytes(self.offline_bytes))),
            Some(("client store", human_bytes(self.client_storage_bytes))),
            Some(("rounds", format!("{}", self.rounds))),
            Some(("latency", format!("{:.4} s", self.latency_s))),
        ];
        for (k, v) in rows.into_iter().flatten() {
            let _ = writeln!(s, "{k:<13} {v}");
        }
        s
    }
}

fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Decimal units, as the protocols' papers report them.
fn human_bytes(b: f64) -> String {
    const UNITS: [(&str, f64); 4] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1.0)];
    let (unit, scale) = UNITS
        .iter()
        .copied()
        .find(|&(_, s)| b.abs() >= s)
        .unwrap_or(("B", 1.0));
    if unit == "B" {
        format!("{b:.0} B")
    } else {
        format!("{:.2} {unit}", b / scale)
    }
}
