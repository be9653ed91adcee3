//! Turning a model's ReLUs into gated sites and driving them through training.

use super::dapa::{self, RefitSchedule};
use crate::models::Model;
use crate::nn::{ActivationSite, ForwardCtx, Gated, SiteMode};
use crate::tensor::ReluCounter;
use crate::{Device, Error, Result, Tensor};
use autorep_kernels::params::GateGrad;
use rand::{Rng, SeedableRng};
use std::rc::Rc;

/// What replaces a switched-off ReLU, and how gates are learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// AutoReP: binary mask by hysteresis on h, STE, budget hinge; DaPa polynomial.
    AutoRep,
    /// The ablation "AutoReP without polynomial": the same mask learning with P(x) = x.
    Identity,
    /// SNL: continuous α per gate, L1 penalty growing while the count stalls, P(x) = x.
    Snl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One gate per activation element (the paper).
    Pixel,
    /// One gate per channel, standing for H·W ReLUs.
    Channel,
}

impl Granularity {
    /// `pixel` or `channel`, as written on the command line and in configs.
    pub fn from_name(name: &str) -> Result<Granularity> {
        match name {
            "pixel" => Ok(Granularity::Pixel),
            "channel" => Ok(Granularity::Channel),
            other => Err(Error::Invalid(format!(
                "unknown granularity '{other}': use pixel or channel"
            ))),
        }
    }
}

/// How DaPa coefficients are installed (autorep-method.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polynomial {
    /// Exact fit from the measured statistics before replacement training, then trained.
    Clean,
    /// The official code: refits every 10th forward pass up to 500 from the running
    /// statistics, with variance passed as σ and the /5, /10 shrinkage, then trained.
    Faithful,
}

impl Granularity {
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Pixel => "pixel",
            Granularity::Channel => "channel",
        }
    }
}

impl std::str::FromStr for Granularity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Granularity::from_name(s)
    }
}

impl std::str::FromStr for Polynomial {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Polynomial::from_name(s)
    }
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::AutoRep => "autorep",
            Method::Identity => "identity",
            Method::Snl => "snl",
        }
    }
}

impl Polynomial {
    pub fn name(self) -> &'static str {
        match self {
            Polynomial::Clean => "clean",
            Polynomial::Faithful => "faithful",
        }
    }

    /// `clean` or `faithful`, as written on the command line and in configs.
    pub fn from_name(name: &str) -> Result<Polynomial> {
        match name {
            "clean" => Ok(Polynomial::Clean),
            "faithful" => Ok(Polynomial::Faithful),
            other => Err(Error::Invalid(format!(
                "unknown DaPa mode '{other}': use clean or faithful"
            ))),
        }
    }
}

fn faithful_shrink() -> [f64; 2] {
    dapa::FAITHFUL_SHRINK
}

/// SNL's threshold on α: above it a gate is a ReLU (the official `threshold`, 0.01).
pub const SNL_THRESHOLD: f32 = 0.01;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceConfig {
    pub method: Method,
    /// ReLUs to keep (B).
    pub budget: usize,
    /// AutoReP's penalty weight λ, or SNL's initial L1 weight λ₁.
    pub lambda: f32,
    /// Hysteresis threshold τ.
    pub tau: f32,
    /// Polynomial degree (1 or 2).
    pub degree: usize,
    pub s1: f32,
    pub s2: f32,
    pub granularity: Granularity,
    pub polynomial: Polynomial,
    /// Lower clip of the running variance in faithful DaPa.
    pub var_min: f64,
    /// h is initialised uniformly in this range.
    pub h_init: (f32, f32),
    pub refit: RefitSchedule,
    /// Faithful DaPa's divisors of w₀ and w₂ (the official 5 and 10).
    #[serde(default = "faithful_shrink")]
    pub shrink: [f64; 2],
    /// Clamp the stored c2 to ±clip_x2 before every forward pass (the official `--clip_x2`;
    /// the Tiny-ImageNet script uses 1); 0 turns it off.
    #[serde(default)]
    pub clip_x2: f32,
    /// SNL counts α above this as a ReLU ([`SNL_THRESHOLD`]; 0.5 once α is binarised).
    pub snl_threshold: f32,
    pub seed: u64,
}

impl ReplaceConfig {
    /// The CIFAR recipe of the notes (§3.3): λ = 140, τ = 0.003, degree 2 with s2 = 0.1.
    pub fn autorep(budget: usize) -> Self {
        ReplaceConfig {
            method: Method::AutoRep,
            budget,
            lambda: 140.0,
            tau: 0.003,
            degree: 2,
            s1: 1.0,
            s2: 0.1,
            granularity: Granularity::Pixel,
            polynomial: Polynomial::Clean,
            var_min: 0.5,
            h_init: (0.0, 1.0),
            refit: RefitSchedule::default(),
            shrink: dapa::FAITHFUL_SHRINK,
            clip_x2: 0.0,
            snl_threshold: SNL_THRESHOLD,
            seed: 2,
        }
    }

    pub fn snl(budget: usize) -> Self {
        ReplaceConfig {
            method: Method::Snl,
            lambda: 1e-5,
            ..Self::autorep(budget)
        }
    }

    pub fn identity(budget: usize) -> Self {
        ReplaceConfig {
            method: Method::Identity,
            ..Self::autorep(budget)
        }
    }

    /// Every number finite and in range: a NaN λ or τ would train silently into NaN gates.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64, need: &str| {
            Err(Error::Invalid(format!(
                "{what} {v} is invalid: it must be {need}"
            )))
        };
        for (what, v) in [
            ("lambda", self.lambda),
            ("tau", self.tau),
            ("clip_x2", self.clip_x2),
            ("snl threshold", self.snl_threshold),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(what, v as f64, "a finite number ≥ 0");
            }
        }
        if !(self.var_min.is_finite() && self.var_min > 0.0) {
            return bad("var_min", self.var_min, "a finite number > 0");
        }
        for (what, v) in [
            ("shrink of w0", self.shrink[0]),
            ("shrink of w2", self.shrink[1]),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(what, v, "a finite number > 0");
            }
        }
        // Scales of the polynomial's terms: 0 removes a term, and a negative one flips the
        // x² term in faithful mode. s2 is used only by AutoReP's degree-2 polynomial.
        let s2_used = self.degree == 2 && self.method == Method::AutoRep;
        for (what, v, used) in [("s1", self.s1, true), ("s2", self.s2, s2_used)] {
            if !v.is_finite() || (used && v <= 0.0) {
                return bad(what, v as f64, "a finite number > 0");
            }
        }
        if self.refit.period == 0 {
            return Err(Error::Invalid(
                "refit_period 0 is invalid: refits happen every refit_period forward passes, at least 1".into(),
            ));
        }
        let (a, b) = self.h_init;
        if !(a.is_finite() && b.is_finite() && a <= b) {
            return Err(Error::Invalid(format!(
                "h_init [{a}, {b}] is invalid: two finite numbers, the first not above the second"
            )));
        }
        if !(1..=2).contains(&self.degree) {
            return Err(Error::Invalid(format!(
                "polynomial degree {} is not supported by the gate: use 1 or 2",
                self.degree
            )));
        }
        Ok(())
    }
}

/// A model whose sites are gated, with the state that drives them.
pub struct Replacement {
    pub cfg: ReplaceConfig,
    pub counter: Rc<ReluCounter>,
    /// ReLUs of the all-ReLU model (N).
    pub total: usize,
    /// Full forward passes so far, evaluation included (the faithful refit clock).
    pub passes: u64,
    /// Whether the gates are frozen (mask fixed; SNL's α binarised).
    pub frozen: bool,
    /// Momentum of the DaPa statistics update (0.1; 1/k while calibrating a clean fit).
    pub(crate) stats_momentum: f32,
}

fn uniform(rng: &mut impl Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if hi > lo {
                rng.random_range(lo..hi)
            } else {
                lo
            }
        })
        .collect()
}

impl Replacement {
    /// Gate every site of `model`. The model keeps its weights.
    pub fn install(
        model: &mut dyn Model,
        cfg: ReplaceConfig,
        device: &Device,
    ) -> Result<Replacement> {
        let total = model.relu_total();
        if cfg.budget > total {
            return Err(Error::Invalid(format!(
                "budget {} exceeds {}'s {} ReLUs: choose a budget at most {}",
                cfg.budget,
                model.name(),
                total,
                total
            )));
        }
        if !(1..=2).contains(&cfg.degree) {
            return Err(Error::Invalid(format!(
                "polynomial degree {} is not supported by the gate: use 1 or 2",
                cfg.degree
            )));
        }
        cfg.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        let s2 = if cfg.degree == 2 && cfg.method == Method::AutoRep {
            cfg.s2
        } else {
            0.0
        };
        let penalty = cfg.lambda / total as f32;
        for site in model.sites_mut() {
            let c = site.channels;
            let gates = match cfg.granularity {
                Granularity::Pixel => site.relus(),
                Granularity::Channel => c,
            };
            let identity: Vec<f32> = [vec![0.0; c], vec![1.0; c], vec![0.0; c]].concat();
            let gated = match cfg.method {
                Method::AutoRep | Method::Identity => {
                    let gate = Tensor::param(
                        device,
                        &[gates],
                        uniform(&mut rng, gates, cfg.h_init.0, cfg.h_init.1),
                    )?;
                    let mask = Tensor::from_vec(device, &[gates], vec![1.0; gates])?;
                    let coef = if cfg.method == Method::AutoRep {
                        // ≈ identity until DaPa installs a fit (the official initialisation).
                        let init = [
                            uniform(&mut rng, c, 0.0, 1e-4),
                            uniform(&mut rng, c, 1.0, 1.0001),
                            uniform(&mut rng, c, 0.0, 1e-4),
                        ]
                        .concat();
                        Tensor::param(device, &[3 * c], init)?
                    } else {
                        Tensor::from_vec(device, &[3 * c], identity)?
                    };
                    let stats = (cfg.method == Method::AutoRep)
                        .then(|| -> Result<_> {
                            Ok((
                                Tensor::from_vec(device, &[c], vec![0.0; c])?,
                                Tensor::from_vec(device, &[c], vec![1.0; c])?,
                            ))
                        })
                        .transpose()?;
                    Gated {
                        gate,
                        mask,
                        coef,
                        channel_wise: cfg.granularity == Granularity::Channel,
                        // The official degree-2 forward has no s₁ (s₂·c₂·x² + c₁·x + c₀):
                        // the gate's s₁ is 1 there, and s₁ only divides the fitted c₁. The
                        // identity ablation's fixed coefficients mean x itself.
                        s1: if cfg.degree == 2 || cfg.method == Method::Identity {
                            1.0
                        } else {
                            cfg.s1
                        },
                        s2,
                        clip2: cfg.clip_x2,
                        grad: GateGrad::Ste {
                            penalty,
                            budget: cfg.budget as u64,
                        },
                        stats,
                    }
                }
                Method::Snl => {
                    let alpha = Tensor::param(device, &[gates], vec![1.0; gates])?;
                    Gated {
                        gate: alpha.clone(),
                        mask: alpha,
                        coef: Tensor::from_vec(device, &[3 * c], identity)?,
                        channel_wise: cfg.granularity == Granularity::Channel,
                        s1: 1.0,
                        s2: 0.0,
                        clip2: 0.0,
                        grad: GateGrad::Snl { l1: cfg.lambda },
                        stats: None,
                    }
                }
            };
            site.mode = SiteMode::Gated(gated);
        }
        Ok(Replacement {
            counter: Rc::new(ReluCounter::new(device)?),
            total,
            passes: 0,
            frozen: false,
            stats_momentum: 0.1,
            cfg,
        })
    }

    fn gated(site: &ActivationSite) -> &Gated {
        match &site.mode {
            SiteMode::Gated(g) => g,
            SiteMode::Relu => unreachable!("installed sites are gated"),
        }
    }

    /// Call before every training forward pass: updates every mask from its h (hysteresis),
    /// recounts the ReLUs exactly on the device, and applies a scheduled DaPa refit. Returns
    /// the context the forward pass must use.
    pub fn begin_forward(&mut self, model: &dyn Model, train: bool) -> Result<ForwardCtx> {
        self.passes += 1;
        self.sync(model)?;
        if self.cfg.method == Method::AutoRep
            && self.cfg.polynomial == Polynomial::Faithful
            && !self.frozen
            && self.cfg.refit.refit_now(self.passes)
        {
            // The official update_poly folds the current batch into the statistics before it
            // refits; here the refit reads them before the pass (the coefficients are
            // computed on the host, and the batch's statistics exist only inside the pass),
            // so a refit lags by one momentum-0.1 update of the statistics.
            self.refit(model, Polynomial::Faithful)?;
        }
        self.clip_x2(model)?;
        Ok(ForwardCtx {
            train,
            counter: Some(self.counter.clone()),
            stats_momentum: self.stats_momentum,
            bn_momentum: None,
            noise_seed: None,
            fuse: crate::nn::fusion_default(),
        })
    }

    /// The context of an evaluation pass: the masks as they are, nothing updated (evaluation
    /// is pure; call [`Replacement::sync`] first so the masks reflect the latest h).
    pub fn eval_ctx(&self) -> ForwardCtx {
        ForwardCtx {
            train: false,
            counter: Some(self.counter.clone()),
            stats_momentum: self.stats_momentum,
            bn_momentum: None,
            noise_seed: None,
            fuse: crate::nn::fusion_default(),
        }
    }

    /// The official refit clock counts evaluation passes too: advance it by `passes` and
    /// apply the refit a scheduled pass among them would have made. Evaluation never updates
    /// the running statistics a refit reads, so one refit after the passes gives the
    /// coefficients the official code ends them with.
    pub fn advance_clock(&mut self, model: &dyn Model, passes: u64) -> Result<()> {
        let due = (self.passes + 1..=self.passes + passes).any(|p| self.cfg.refit.refit_now(p));
        self.passes += passes;
        if due
            && self.cfg.method == Method::AutoRep
            && self.cfg.polynomial == Polynomial::Faithful
            && !self.frozen
        {
            self.refit(model, Polynomial::Faithful)?;
        }
        Ok(())
    }

    /// Bring every mask up to date with its h (hysteresis; idempotent) and recount the ReLUs
    /// exactly. After the last training batch of an epoch the optimizer has moved h once
    /// more: this makes the mask that is counted, evaluated and saved one and the same.
    pub fn sync(&mut self, model: &dyn Model) -> Result<()> {
        self.counter.reset()?;
        for site in model.sites() {
            let g = Self::gated(site);
            let p = site.gate_params(1).expect("gated");
            match self.cfg.method {
                Method::AutoRep | Method::Identity => {
                    if !self.frozen {
                        crate::no_grad(|| g.gate.gate_hysteresis(&g.mask, self.cfg.tau))?;
                    }
                    self.counter.add(&p, &g.mask, 0.5)?;
                }
                Method::Snl => self.counter.add(&p, &g.mask, self.cfg.snl_threshold)?,
            }
        }
        Ok(())
    }

    /// The official `--clip_x2`: before every training forward pass each site's stored c₂ is
    /// clamped to ±clip_x2 in place (`update_poly`'s `.data.copy_(torch.clamp(…))`), so a c₂
    /// the optimiser pushed past the bound restarts from it with its full gradient, and can
    /// come back inside. (The gates also clamp c₂ where they use it, which passes no gradient
    /// outside the bound: alone, that would pin a c₂ once past it for the rest of the run.)
    fn clip_x2(&self, model: &dyn Model) -> Result<()> {
        let bound = self.cfg.clip_x2;
        if bound <= 0.0 || self.cfg.method != Method::AutoRep {
            return Ok(());
        }
        for site in model.sites() {
            let c = site.channels;
            crate::no_grad(|| {
                Self::gated(site)
                    .coef
                    .clamp_range_(2 * c..3 * c, -bound, bound)
            })?;
        }
        Ok(())
    }

    /// Install DaPa coefficients on every site from its running statistics.
    pub fn refit(&self, model: &dyn Model, mode: Polynomial) -> Result<()> {
        for site in model.sites() {
            let g = Self::gated(site);
            let Some((mean, var)) = &g.stats else {
                continue;
            };
            let (mean, var) = (mean.to_vec()?, var.to_vec()?);
            let c = site.channels;
            let mut coef = vec![0f32; 3 * c];
            for ch in 0..c {
                let (u, v) = (mean[ch] as f64, var[ch] as f64);
                let w = match mode {
                    Polynomial::Clean => dapa::clean_coeffs(
                        u,
                        v,
                        self.cfg.degree,
                        self.cfg.s1 as f64,
                        self.cfg.s2 as f64,
                    )?,
                    Polynomial::Faithful => dapa::faithful_coeffs(
                        u,
                        v,
                        self.cfg.degree,
                        self.cfg.s1 as f64,
                        self.cfg.s2 as f64,
                        self.cfg.var_min,
                        self.cfg.shrink,
                    )?,
                };
                for k in 0..3 {
                    coef[k * c + ch] = w[k] as f32;
                }
            }
            g.coef.copy_from_host(&coef)?;
        }
        Ok(())
    }

    /// Clean DaPa: measure each site's input statistics over `batches` (forward passes in
    /// training mode without a graph, all ReLUs on), then fit the polynomials exactly.
    pub fn fit_clean(&mut self, model: &dyn Model, batches: &[Tensor]) -> Result<()> {
        for site in model.sites() {
            if let Some((mean, var)) = &Self::gated(site).stats {
                // A cumulative average over the calibration batches: momentum 1/k at batch k.
                mean.fill_(0.0)?;
                var.fill_(1.0)?;
            }
        }
        for (k, x) in batches.iter().enumerate() {
            self.stats_momentum = 1.0 / (k + 1) as f32;
            crate::no_grad(|| -> Result<()> {
                let mut ctx = self.begin_forward(model, true)?;
                // Measuring, not training: the batch norms normalise by the batch as in
                // training but keep their running statistics (momentum 0).
                ctx.bn_momentum = Some(0.0);
                model.forward(x, &ctx)?;
                Ok(())
            })?;
        }
        self.stats_momentum = 0.1;
        self.refit(model, Polynomial::Clean)
    }

    /// Current exact ReLU count (reads the device counter).
    pub fn count(&self) -> Result<u64> {
        self.counter.read()
    }

    /// λ·max(0, (count − B)/N): the value of AutoReP's budget penalty (for logging).
    pub fn penalty(&self, count: u64) -> f32 {
        self.cfg.lambda * (count.saturating_sub(self.cfg.budget as u64)) as f32 / self.total as f32
    }

    /// SNL's L1 weight, e.g. after growing it ×1.1.
    pub fn set_snl_l1(&mut self, model: &mut dyn Model, l1: f32) {
        self.cfg.lambda = l1;
        for site in model.sites_mut() {
            if let SiteMode::Gated(g) = &mut site.mode {
                g.grad = GateGrad::Snl { l1 };
            }
        }
    }

    /// The trainable gate parameters (h, or SNL's α) of every site.
    pub fn gate_params(&self, model: &dyn Model) -> Vec<Tensor> {
        model
            .sites()
            .iter()
            .map(|s| Self::gated(s).gate.clone())
            .filter(Tensor::requires_grad)
            .collect()
    }

    /// The trainable polynomial coefficients of every site.
    pub fn coef_params(&self, model: &dyn Model) -> Vec<Tensor> {
        model
            .sites()
            .iter()
            .map(|s| Self::gated(s).coef.clone())
            .filter(Tensor::requires_grad)
            .collect()
    }

    /// Fix the masks: AutoReP's h stops changing (callers drop it from the optimizer); SNL's α
    /// is binarised at its threshold and becomes a constant.
    pub fn freeze(&mut self, model: &mut dyn Model) -> Result<()> {
        self.frozen = true;
        if self.cfg.method == Method::Snl {
            let t = self.cfg.snl_threshold;
            for site in model.sites_mut() {
                if let SiteMode::Gated(g) = &mut site.mode {
                    let bin: Vec<f32> = g
                        .mask
                        .to_vec()?
                        .iter()
                        .map(|&a| if a > t { 1.0 } else { 0.0 })
                        .collect();
                    let fixed = Tensor::from_vec(&g.mask.device(), g.mask.shape(), bin)?;
                    g.gate = fixed.clone();
                    g.mask = fixed;
                }
            }
            self.cfg.snl_threshold = 0.5;
        }
        Ok(())
    }

    /// Make the mask meet the budget exactly: if more than B ReLUs are on, switch off the
    /// kept gates with the smallest gate parameter until at most B remain. Returns how many
    /// gates were switched off. (Used at the end of a run whose last mask is over budget.)
    pub fn enforce_budget(&mut self, model: &dyn Model) -> Result<usize> {
        let mut kept: Vec<(f32, usize, usize, usize)> = Vec::new(); // (h, site, gate, weight)
        let mut count = 0usize;
        let thresh = if self.cfg.method == Method::Snl {
            self.cfg.snl_threshold
        } else {
            0.5
        };
        let masks: Vec<Vec<f32>> = model
            .sites()
            .iter()
            .map(|s| Self::gated(s).mask.to_vec())
            .collect::<Result<_>>()?;
        for (si, site) in model.sites().iter().enumerate() {
            let g = Self::gated(site);
            let weight = if g.channel_wise { site.hw } else { 1 };
            let h = g.gate.to_vec()?;
            for (gi, &m) in masks[si].iter().enumerate() {
                if m > thresh {
                    count += weight;
                    kept.push((h[gi], si, gi, weight));
                }
            }
        }
        if count <= self.cfg.budget {
            return Ok(0);
        }
        kept.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut masks = masks;
        let mut off = 0;
        for (_, si, gi, w) in kept {
            if count <= self.cfg.budget {
                break;
            }
            masks[si][gi] = 0.0;
            count -= w;
            off += 1;
        }
        for (site, m) in model.sites().iter().zip(&masks) {
            let g = Self::gated(site);
            g.mask.copy_from_host(m)?;
            if self.cfg.method != Method::Snl {
                // Keep h consistent with the mask so the hysteresis leaves it off.
                let h: Vec<f32> = g
                    .gate
                    .to_vec()?
                    .iter()
                    .zip(m)
                    .map(|(&h, &mv)| {
                        if mv == 0.0 {
                            h.min(-2.0 * self.cfg.tau - 1e-3)
                        } else {
                            h
                        }
                    })
                    .collect();
                g.gate.copy_from_host(&h)?;
            }
        }
        Ok(off)
    }

    /// Per site: the ReLUs kept (read from the masks), its activations, and the degree of
    /// what replaces the rest (0: the identity of SNL and the identity ablation).
    pub fn site_counts(&self, model: &dyn Model) -> Result<Vec<crate::cost::SiteCount>> {
        let degree = match self.cfg.method {
            Method::AutoRep => self.cfg.degree,
            Method::Identity | Method::Snl => 0,
        };
        let thresh = if self.cfg.method == Method::Snl {
            self.cfg.snl_threshold
        } else {
            0.5
        };
        model
            .sites()
            .iter()
            .map(|s| {
                let g = Self::gated(s);
                let w = if g.channel_wise { s.hw } else { 1 };
                let kept = g.mask.to_vec()?.iter().filter(|&&m| m > thresh).count() * w;
                Ok(crate::cost::SiteCount {
                    name: s.name.clone(),
                    relus: kept,
                    total: s.relus(),
                    degree,
                })
            })
            .collect()
    }
}

/// Every site's counts: read from the masks when the model is gated, else every ReLU kept.
pub fn sites_of(
    model: &dyn Model,
    rep: Option<&Replacement>,
) -> Result<Vec<crate::cost::SiteCount>> {
    match rep {
        Some(r) => r.site_counts(model),
        None => Ok(model
            .sites()
            .iter()
            .map(|s| crate::cost::SiteCount {
                name: s.name.clone(),
                relus: s.relus(),
                total: s.relus(),
                degree: 0,
            })
            .collect()),
    }
}
