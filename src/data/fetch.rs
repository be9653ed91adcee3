//! Download the official dataset archives, verify their MD5 and extract them. Uses the system's
//! `curl` (or `wget`), `tar` and `unzip`, so it adds no HTTP or archive crates; MD5 (RFC 1321)
//! is implemented here.

use super::Dataset;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One file of a dataset's official distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    pub url: &'static str,
    /// Lower-case hex MD5 of the file as published.
    pub md5: &'static str,
}

impl RemoteFile {
    /// The file name: the last segment of the URL.
    pub fn file_name(&self) -> &'static str {
        self.url.rsplit('/').next().unwrap_or(self.url)
    }
}

/// The official files of `dataset`, with their published MD5s.
pub fn remote_files(dataset: Dataset) -> &'static [RemoteFile] {
    match dataset {
        Dataset::Cifar10 => &[RemoteFile {
            url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            md5: "c32a1d4ab5d03f1284b67883e8d87530",
        }],
        Dataset::Cifar100 => &[RemoteFile {
            url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            md5: "03b5dce01913d631647c71ecec9e9cb8",
        }],
        // Behind a login: `fetch` says how to get it.
        Dataset::ImageNet => &[],
        Dataset::TinyImageNet => &[RemoteFile {
            url: "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
            md5: "90528d7ca1a48142e341f4ef8d21d0de",
        }],
        Dataset::FashionMnist => {
            const F: [RemoteFile; 4] = [
                RemoteFile {
                    url: concat!(
                        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                        "/train-images-idx3-ubyte.gz"
                    ),
                    md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                },
                RemoteFile {
                    url: concat!(
                        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                        "/train-labels-idx1-ubyte.gz"
                    ),
                    md5: "25c81989df183df01b3e8a0aad5dffbe",
                },
                RemoteFile {
                    url: concat!(
                        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                        "/t10k-images-idx3-ubyte.gz"
                    ),
                    md5: "bef4ecab320f06d8554ea6380940ec79",
                },
                RemoteFile {
                    url: concat!(
                        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                        "/t10k-labels-idx1-ubyte.gz"
                    ),
                    md5: "bb300cfdad3c16e7a12a480ee83cd310",
                },
            ];
            &F
        }
    }
}

/// Files whose presence means the extracted dataset is complete.
fn complete_marker(dataset: Dataset) -> &'static [&'static str] {
    match dataset {
        Dataset::Cifar10 => &[
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
            "test_batch.bin",
        ],
        Dataset::Cifar100 => &["train.bin", "test.bin"],
        Dataset::TinyImageNet => &["wnids.txt", "val/val_annotations.txt"],
        Dataset::ImageNet => &["train", "val"],
        Dataset::FashionMnist => &[
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ],
    }
}

/// Download `dataset` into `dir` (created if needed), verify each file's MD5, extract the
/// archive, and return the folder to pass as `--data` (`dir/<dataset.folder()>`). Does
/// nothing when that folder is already complete; a downloaded archive whose MD5 matches is
/// not fetched again. Without internet it fails with a one-line error naming the URL.
pub fn fetch(dataset: Dataset, dir: &Path) -> Result<PathBuf> {
    if dataset == Dataset::ImageNet {
        return Err(Error::Invalid(dataset.how_to_get()));
    }
    let target = dir.join(dataset.folder());
    if complete_marker(dataset)
        .iter()
        .all(|m| target.join(m).is_file())
    {
        return Ok(target);
    }
    let dl_dir = if dataset == Dataset::FashionMnist {
        target.clone()
    } else {
        dir.to_path_buf()
    };
    if let Some(file) = dl_dir.ancestors().find(|a| a.is_file()) {
        return Err(Error::Invalid(format!(
            "cannot create {}: {} is a file; pass a folder to --data",
            dl_dir.display(),
            file.display()
        )));
    }
    std::fs::create_dir_all(&dl_dir)
        .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", dl_dir.display())))?;
    let elsewhere = format!(
        "download it on a machine with internet, extract it there, and pass --data pointing at the extracted {} folder",
        dataset.folder()
    );
    for rf in remote_files(dataset) {
        let dest = dl_dir.join(rf.file_name());
        if dest.is_file() && md5_file(&dest)? == rf.md5 {
            continue;
        }
        let part = PathBuf::from(format!("{}.part", dest.display()));
        download(rf.url, &part).map_err(|why| {
            Error::Invalid(format!(
                "could not download {} ({why}): {elsewhere}",
                rf.url
            ))
        })?;
        let got = md5_file(&part)?;
        if got != rf.md5 {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Invalid(format!(
                "{}: the download has MD5 {got}, expected {} (corrupt or changed file): {elsewhere}",
                rf.url, rf.md5
            )));
        }
        std::fs::rename(&part, &dest)
            .map_err(|e| Error::Invalid(format!("cannot rename {}: {e}", part.display())))?;
        if rf.url.ends_with(".tar.gz") {
            run_tool(
                Command::new("tar")
                    .arg("-xzf")
                    .arg(&dest)
                    .arg("-C")
                    .arg(dir),
                "tar",
            )?;
        } else if rf.url.ends_with(".zip") {
            let unzip = run_tool(
                Command::new("unzip")
                    .arg("-q")
                    .arg("-o")
                    .arg(&dest)
                    .arg("-d")
                    .arg(dir),
                "unzip",
            );
            if unzip.is_err() {
                run_tool(
                    Command::new("python3")
                        .args(["-m", "zipfile", "-e"])
                        .arg(&dest)
                        .arg(dir),
                    "python3 -m zipfile",
                )
                .map_err(|e| {
                    Error::Invalid(format!("cannot extract {} (unzip and {e})", dest.display()))
                })?;
            }
        }
    }
    if let Some(m) = complete_marker(dataset)
        .iter()
        .find(|m| !target.join(m).is_file())
    {
        return Err(Error::Invalid(format!(
            "after download and extraction {} is missing: the archive's layout is not the official one",
            target.join(m).display()
        )));
    }
    Ok(target)
}

/// The last non-empty line of a tool's stderr, trimmed.
fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

fn run_tool(cmd: &mut Command, name: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| Error::Invalid(format!("cannot run {name}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{name} failed ({}): {}",
            out.status,
            last_line(&out.stderr)
        )))
    }
}

/// Fetch `url` into `dest` with curl, or wget when curl is missing; the reason on failure.
fn download(url: &str, dest: &Path) -> std::result::Result<(), String> {
    let curl = Command::new("curl")
        .args(["-fsSL", "--retry", "2", "--connect-timeout", "20", "-o"])
        .arg(dest)
        .arg(url)
        .output();
    let out = match curl {
        Ok(o) => ("curl", o),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match Command::new("wget")
                .args(["-q", "--tries=3", "--timeout=20", "-O"])
                .arg(dest)
                .arg(url)
                .output()
            {
                Ok(o) => ("wget", o),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err("neither curl nor wget is installed".into())
                }
                Err(e) => return Err(format!("cannot run wget: {e}")),
            }
        }
        Err(e) => return Err(format!("cannot run curl: {e}")),
    };
    let (tool, out) = out;
    if out.status.success() && dest.is_file() {
        return Ok(());
    }
    let _ = std::fs::remove_file(dest);
    let why = last_line(&out.stderr);
    Err(if why.is_empty() {
        format!("{tool} {}", out.status)
    } else if why.starts_with(tool) {
        why
    } else {
        format!("{tool}: {why}")
    })
}

/// MD5 (RFC 1321), incremental.
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    buf: [u8; 64],
    buf_len: usize,
    len: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

const SHIFTS: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// K[i] = floor(|sin(i + 1)| · 2^32), as RFC 1321 defines the table.
fn table() -> &'static [u32; 64] {
    static T: OnceLock<[u32; 64]> = OnceLock::new();
    T.get_or_init(|| {
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
    })
}

impl Md5 {
    pub fn new() -> Self {
        Md5 {
            state: [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476],
            buf: [0; 64],
            buf_len: 0,
            len: 0,
        }
    }

    fn block(&mut self, block: &[u8]) {
        let k = table();
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = self.state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(SHIFTS[i]));
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return;
            }
            let buf = self.buf;
            self.block(&buf);
            self.buf_len = 0;
        }
        let mut chunks = data.chunks_exact(64);
        for c in &mut chunks {
            self.block(c);
        }
        let rest = chunks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn finish(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let pad_len = if self.buf_len < 56 {
            56 - self.buf_len
        } else {
            120 - self.buf_len
        };
        let mut pad = vec![0u8; pad_len];
        pad[0] = 0x80;
        self.update(&pad);
        self.update(&bits.to_le_bytes());
        let mut out = [0u8; 16];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        out
    }
}

/// The MD5 digest of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(data);
    h.finish()
}

/// The MD5 digest of `data` as 32 lower-case hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&md5(data))
}

fn hex(d: &[u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The MD5 of a file, streamed, as lower-case hex.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finish()))
}
