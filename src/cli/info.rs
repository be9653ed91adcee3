//! `devices`, `count`, `dapa` and `data fetch`: what the machine, a model and the DaPa fit
//! look like, and the datasets.

use autorep::{Device, DeviceChoice};

/// The largest input side `count` and `cost` accept: 4096² activations per channel already
/// exceeds every model here by far, and keeps every count within u64.
pub const MAX_INPUT: usize = 4096;

#[derive(clap::Args)]
pub struct CountArgs {
    #[arg(long, default_value = "resnet18_in")]
    model: String,
    /// Input side in pixels (32 for CIFAR, 64 for Tiny-ImageNet).
    #[arg(long, default_value_t = 32)]
    input: usize,
}

#[derive(clap::Args)]
pub struct DapaArgs {
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    mean: f64,
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    std: f64,
    /// 1 to 4 (the gate runs 1 or 2).
    #[arg(long, default_value_t = 2)]
    degree: usize,
}

#[derive(clap::Subcommand)]
pub enum DataWhat {
    /// Download, verify (md5) and extract cifar10, cifar100, tiny-imagenet or fashion-mnist.
    Fetch {
        dataset: String,
        /// Folder to download into (the dataset lands in its own folder inside, where the
        /// training commands look when given no --data).
        #[arg(long, default_value = autorep::data::DEFAULT_DIR)]
        data: std::path::PathBuf,
    },
}

/// A model built on the CPU for counting, with its input side checked.
pub fn counting_model(
    model: &str,
    input: usize,
) -> anyhow::Result<Box<dyn autorep::models::Model>> {
    if !(8..=MAX_INPUT).contains(&input) {
        anyhow::bail!("--input {input}: the input side must be between 8 and {MAX_INPUT} pixels");
    }
    Ok(autorep::models::build(
        model,
        &Device::Cpu,
        3,
        input,
        10,
        0,
    )?)
}

pub fn count(a: CountArgs) -> anyhow::Result<()> {
    let m = counting_model(&a.model, a.input)?;
    println!(
        "{:<4} {:<22} {:>8} {:>8} {:>10}",
        "#", "site", "channels", "pixels", "ReLUs"
    );
    for (i, s) in m.sites().iter().enumerate() {
        println!(
            "{i:<4} {:<22} {:>8} {:>8} {:>10}",
            s.name,
            s.channels,
            s.hw,
            s.relus()
        );
    }
    println!(
        "total {} ReLUs over {} sites ({}, {}x{})",
        m.relu_total(),
        m.sites().len(),
        a.model,
        a.input,
        a.input
    );
    Ok(())
}

pub fn dapa(a: DapaArgs) -> anyhow::Result<()> {
    let fit = autorep::autorep::dapa::fit(a.mean, a.std, a.degree)?;
    let terms: Vec<String> = fit
        .coeffs
        .iter()
        .enumerate()
        .map(|(k, w)| format!("c{k} = {w:.6}"))
        .collect();
    println!(
        "DaPa degree {} for x ~ N({}, {}²): {}",
        a.degree,
        a.mean,
        a.std,
        terms.join(", ")
    );
    println!("expected squared error vs ReLU: {:.6}", fit.mse);
    Ok(())
}

pub fn data(what: DataWhat) -> anyhow::Result<()> {
    let DataWhat::Fetch { dataset, data } = what;
    let ds = autorep::data::Dataset::from_name(&dataset)?;
    let dir = autorep::data::fetch(ds, &data)?;
    println!("{} ready in {}", ds.name(), dir.display());
    Ok(())
}

pub fn devices(choice: DeviceChoice) -> anyhow::Result<()> {
    let adapters = autorep_kernels::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found (install Mesa's Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    for (i, a) in adapters.iter().enumerate() {
        println!(
            "[{i}] {} — {:?}, {:?}, driver {} {}",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} storage buffers/stage",
            a.max_storage_binding >> 20,
            a.max_buffer >> 20,
            a.workgroup_storage >> 10,
            a.invocations_per_workgroup,
            a.storage_buffers_per_stage
        );
        println!(
            "    features: f16 {}  subgroups {}  timestamps {}  tensor cores (16x16x16 f16->f32 cooperative matrices) {}",
            yes(a.f16),
            yes(a.subgroup),
            yes(a.timestamps),
            yes(a.coop_f16)
        );
        println!(
            "    conv plans: {}",
            autorep::plans::describe_source(autorep::plans::source(), &a.fingerprint())
        );
    }
    let picked = Device::open(choice)?;
    println!("--device {choice:?} picks: {}", picked.describe());
    picked.check_tensor_cores();
    if let Some(check) = picked.coop_check() {
        println!("    tensor cores: {check}");
    }
    if let (DeviceChoice::Auto, Device::Gpu(g)) = (choice, &picked) {
        if g.report().is_software() {
            println!("    (a software adapter: training, evaluation and the demo run on the CPU backend instead; bench and tune measure it)");
        }
    }
    Ok(())
}
