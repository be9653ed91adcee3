//! `cargo bench --bench kernels [-- --full]`: every training kernel on resnet18_in's layer
//! shapes on the device `AUTOREP_DEVICE` picks (auto by default), the same measurement as
//! `autorep bench kernels` (batch 8 unless `--full`, which uses batch 128).

use autorep::{bench, Device, DeviceChoice};

fn main() -> autorep::Result<()> {
    let choice = std::env::var("AUTOREP_DEVICE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DeviceChoice::Auto);
    let device = Device::open(choice)?;
    let batch = if std::env::args().any(|a| a == "--full") {
        128
    } else {
        8
    };
    println!("adapter: {}  batch {batch}", device.describe());
    let mut rows = bench::conv_kernels(&device, "resnet18_in", batch, 3, autorep::Dtype::F32)?;
    rows.extend(bench::memory_kernels(&device, batch, 3)?);
    for r in rows {
        let rate = match (r.gflops, r.gbps) {
            (Some(g), _) => format!("{g:>9.2} GFLOP/s"),
            (_, Some(b)) => format!("{b:>9.2} GB/s"),
            _ => String::new(),
        };
        println!(
            "{:<22} {:<36} {:>9.3} ms {rate}",
            r.kernel,
            r.shape,
            r.median_s * 1e3
        );
    }
    Ok(())
}
