//! `cost`: communication, rounds and latency of a network under the CrypTen and Delphi
//! presets, from a ReLU count or from a checkpoint's mask.

use super::info::counting_model;
use autorep::cost::{assumed_sites, estimate_sites, Protocol, SiteCount, PRESET_NAMES};

#[derive(clap::Args)]
pub struct CostArgs {
    #[arg(long, default_value = "resnet18_in", conflicts_with_all = ["checkpoint", "onnx"])]
    model: String,
    /// Input side in pixels (32 for CIFAR, 64 for Tiny-ImageNet, 224 for ImageNet).
    #[arg(long, default_value_t = 32, conflicts_with_all = ["checkpoint", "onnx"])]
    input: usize,
    /// ReLUs kept (the rest are polynomials), e.g. 12.9k; all of them by default.
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["checkpoint", "onnx"])]
    relus: Option<String>,
    /// Take the model and its per-site ReLU counts from this checkpoint's mask instead.
    #[arg(long, conflicts_with = "onnx")]
    checkpoint: Option<std::path::PathBuf>,
    /// Take the per-site ReLU and polynomial counts from an ONNX graph written by
    /// `autorep export` (its Relu nodes, masks and shapes).
    #[arg(long)]
    onnx: Option<std::path::PathBuf>,
    /// crypten, delphi or all.
    #[arg(long, default_value = "all")]
    protocol: String,
    /// Link bandwidth, bytes per second.
    #[arg(long, default_value_t = autorep::cost::LAN_BANDWIDTH_BYTES_PER_S)]
    bandwidth: f64,
    /// Round-trip time, seconds.
    #[arg(long, default_value_t = autorep::cost::LAN_RTT_S)]
    rtt: f64,
    /// Degree of the polynomials that replace the ReLUs not kept with --relus (0: the
    /// identity, as SNL's linearised elements).
    #[arg(long, default_value_t = 2, conflicts_with_all = ["checkpoint", "onnx"])]
    degree: usize,
    /// Override the preset's online bytes per ReLU.
    #[arg(long)]
    relu_bytes: Option<f64>,
    /// Override the preset's rounds of one layer's ReLUs.
    #[arg(long)]
    relu_rounds: Option<f64>,
    /// Override the preset's single-thread compute per ReLU, microseconds.
    #[arg(long)]
    relu_us: Option<f64>,
    /// Override the preset's online bytes per secret multiplication in a polynomial (a
    /// degree-d polynomial takes d of them with secret coefficients, d − 1 with plaintext).
    #[arg(long)]
    mult_bytes: Option<f64>,
    /// Override the preset's rounds per secret multiplication.
    #[arg(long)]
    mult_rounds: Option<f64>,
    /// Override the preset's single-thread compute per secret multiplication, microseconds.
    #[arg(long)]
    mult_us: Option<f64>,
    /// Override the preset's offline (preprocessing) communication per ReLU, bytes.
    #[arg(long)]
    offline_relu_bytes: Option<f64>,
    /// Override the preset's client storage per ReLU, bytes.
    #[arg(long)]
    client_storage_relu_bytes: Option<f64>,
    /// Override whether the polynomials' coefficients are secret (CrypTen: true, Horner's
    /// d multiplications for degree d) or the server's plaintext (Delphi: false, one for x²
    /// and none for a linear map).
    #[arg(long)]
    secret_coefficients: Option<bool>,
}

/// A cost figure: finite and not negative (bandwidth above zero).
fn check(name: &str, v: f64, positive: bool) -> anyhow::Result<()> {
    if !v.is_finite() || v < 0.0 || (positive && v == 0.0) {
        anyhow::bail!(
            "--{name} {v} is invalid: it must be a finite number {}",
            if positive { "above 0" } else { "≥ 0" }
        );
    }
    Ok(())
}

pub fn cost(a: CostArgs) -> anyhow::Result<()> {
    check("bandwidth", a.bandwidth, true)?;
    check("rtt", a.rtt, false)?;
    let overrides = [
        ("relu-bytes", a.relu_bytes),
        ("relu-rounds", a.relu_rounds),
        ("relu-us", a.relu_us),
        ("mult-bytes", a.mult_bytes),
        ("mult-rounds", a.mult_rounds),
        ("mult-us", a.mult_us),
        ("offline-relu-bytes", a.offline_relu_bytes),
        ("client-storage-relu-bytes", a.client_storage_relu_bytes),
    ];
    for (name, v) in overrides {
        if let Some(v) = v {
            check(name, v, false)?;
        }
    }
    if a.degree > 2 {
        anyhow::bail!(
            "--degree {} is not one the gate runs: use 2, 1 or 0 (the identity)",
            a.degree
        );
    }
    let names: Vec<&str> = match a.protocol.to_ascii_lowercase().as_str() {
        "all" => PRESET_NAMES.to_vec(),
        _ => vec![a.protocol.as_str()],
    };
    for name in &names {
        Protocol::by_name(name).map_err(|_| {
            anyhow::anyhow!(
                "unknown protocol '{name}': use one of {}, or all",
                PRESET_NAMES.join(", ")
            )
        })?;
    }
    let (name, sites) = match (&a.checkpoint, &a.onnx) {
        (_, Some(path)) => {
            let bytes = autorep::files::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let sites = autorep::export::onnx::sites_of_onnx(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if sites.is_empty() {
                anyhow::bail!(
                    "{}: no activation sites (no Relu node and no autorep mask): pass an ONNX file that `autorep export` wrote",
                    path.display()
                );
            }
            (path.display().to_string(), sites)
        }
        (Some(path), None) => {
            let ck = autorep::train::checkpoint::Checkpoint::load(path)?;
            let (m, rep) = autorep::train::stages::load_model(&autorep::Device::Cpu, &ck)?;
            let sites = autorep::autorep::sites_of(m.as_ref(), rep.as_ref())?;
            (m.name().to_string(), sites)
        }
        (None, None) => {
            let m = counting_model(&a.model, a.input)?;
            let total = m.relu_total();
            let relus = match &a.relus {
                Some(s) => autorep::autorep::parse_count(s)?,
                None => total,
            };
            if relus > total {
                anyhow::bail!(
                    "--relus {relus} exceeds {}'s {total} ReLUs at {}x{}",
                    a.model,
                    a.input,
                    a.input
                );
            }
            let model_sites: Vec<(String, usize)> = m
                .sites()
                .iter()
                .map(|s| (s.name.clone(), s.relus()))
                .collect();
            (
                a.model.clone(),
                assumed_sites(&model_sites, relus, a.degree),
            )
        }
    };
    let relus: usize = sites.iter().map(|s| s.relus).sum();
    let total: usize = sites.iter().map(|s| s.total).sum();
    println!(
        "{name}: {total} activations, {relus} ReLUs kept, {} ({} sites)",
        replaced_by(&sites, total - relus),
        sites.len()
    );
    let all_relu: Vec<SiteCount> = sites
        .iter()
        .map(|s| SiteCount {
            relus: s.total,
            ..s.clone()
        })
        .collect();
    for name in names {
        let mut p = Protocol::by_name(name)?;
        let fields = [
            &mut p.relu_bytes,
            &mut p.relu_rounds,
            &mut p.relu_us,
            &mut p.mult_bytes,
            &mut p.mult_rounds,
            &mut p.mult_us,
            &mut p.offline_relu_bytes,
            &mut p.client_storage_relu_bytes,
        ];
        for (field, (_, v)) in fields.into_iter().zip(overrides) {
            if let Some(v) = v {
                *field = v;
            }
        }
        if let Some(secret) = a.secret_coefficients {
            p.secret_coefficients = secret;
        }
        let r = estimate_sites(&p, &sites, a.bandwidth, a.rtt);
        let all = estimate_sites(&p, &all_relu, a.bandwidth, a.rtt);
        // Both networks' figures, and the sums the comparison below takes.
        let bytes = |c: &autorep::cost::CostReport| c.comm_bytes + c.offline_bytes;
        let figures = |c: &autorep::cost::CostReport| {
            [bytes(c), c.client_storage_bytes, c.rounds, c.latency_s]
        };
        let infinite = figures(&r)
            .into_iter()
            .chain(figures(&all))
            .any(|v| !v.is_finite());
        if infinite {
            anyhow::bail!(
                "the {} estimate overflows (an infinite cost): the constants given are too large; give smaller ones",
                p.name
            );
        }
        println!("{}", r.table());
        if relus < total {
            println!(
                "  vs all-ReLU: online + offline communication {}, latency {}",
                ratio(bytes(&all), bytes(&r), "less", "more"),
                ratio(all.latency_s, r.latency_s, "lower", "higher")
            );
        }
    }
    Ok(())
}

/// How `ours` compares with `all_relu`: "3.1x less", "2.0x more", "the same" or "none"
/// (constants overridden to zero can make the replaced network the dearer one).
fn ratio(all_relu: f64, ours: f64, less: &str, more: &str) -> String {
    if all_relu == ours {
        "the same".into()
    } else if ours == 0.0 {
        "none".into()
    } else if ours < all_relu {
        format!("{:.1}x {less}", all_relu / ours)
    } else if all_relu == 0.0 {
        format!("{more} (all-ReLU: 0)")
    } else {
        format!("{:.1}x {more}", ours / all_relu)
    }
}

/// "N polynomials of degree 2", "N identities", or a mix, for the summary line.
fn replaced_by(sites: &[SiteCount], replaced: usize) -> String {
    let mut by_degree = std::collections::BTreeMap::<usize, usize>::new();
    for s in sites.iter().filter(|s| s.total > s.relus) {
        *by_degree.entry(s.degree).or_default() += s.total - s.relus;
    }
    if by_degree.is_empty() {
        return format!("{replaced} replaced");
    }
    by_degree
        .iter()
        .map(|(d, n)| match d {
            0 => format!("{n} identities (free)"),
            d => format!("{n} polynomials of degree {d}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
