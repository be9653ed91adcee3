//! `cargo bench --bench gemm`: the GEMM core on the device `AUTOREP_DEVICE` picks (auto by
//! default), the same measurement as `autorep bench gemm`.

use autorep::{bench, Device, DeviceChoice};

fn main() {
    let choice = std::env::var("AUTOREP_DEVICE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DeviceChoice::Auto);
    let device = Device::open(choice).expect("open device");
    println!("adapter: {}", device.describe());
    let quick = std::env::args().any(|a| a == "--quick");
    for (m, n, k) in bench::gemm_shapes(quick) {
        let r = bench::gemm(&device, m, n, k, 5, autorep::Dtype::F32).expect("gemm bench");
        println!(
            "{:>22}  {:>9.3} ms  {:>8.2} GFLOP/s",
            format!("{m}x{n}x{k}"),
            r.median_s * 1e3,
            r.gflops
        );
    }
}
