//! The IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed: a big-endian header
//! (two zero bytes, a type byte, 0x08 = u8, the number of dimensions, then one u32 per
//! dimension) followed by the u8 data. Image files have magic 2051 (3 dimensions: count, rows,
//! columns), label files 2049 (1 dimension: count).

use super::{Dataset, ImageSet, Split};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const IDX_IMAGES_MAGIC: u32 = 2051;
pub const IDX_LABELS_MAGIC: u32 = 2049;

pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// One IDX file of u8 data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub magic: u32,
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {what}", path.display()))
}

/// The bytes of `path`, gunzipped when they start with the gzip magic (1f 8b).
fn read_maybe_gz(path: &Path, hint: &str) -> Result<Vec<u8>> {
    gunzip_if_needed(path, super::read_file(path, hint)?)
}

/// `raw` gunzipped when it starts with the gzip magic; `path` names it in errors.
fn gunzip_if_needed(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.len() < 2 || raw[..2] != [0x1f, 0x8b] {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| invalid(path, format_args!("corrupt gzip data ({e})")))?;
    Ok(out)
}

/// Read and check one IDX file of unsigned bytes (raw or gzip): header, dimensions and that
/// the data is exactly as long as the header says.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(path, read_maybe_gz(path, "check the path")?, None)
}

/// `expect`: the magic number of the kind of file the caller reads (images or labels), checked
/// before the sizes, which another kind's header would misread.
fn parse_idx(path: &Path, bytes: Vec<u8>, expect: Option<u32>) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(invalid(
            path,
            format_args!(
                "{} bytes is shorter than an IDX header (truncated?)",
                bytes.len()
            ),
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || !(1..=4).contains(&bytes[3]) {
        return Err(invalid(
            path,
            format_args!("magic number {magic} is not an IDX file of unsigned bytes (expected {IDX_LABELS_MAGIC} for labels or {IDX_IMAGES_MAGIC} for images)"),
        ));
    }
    if let Some(want) = expect.filter(|w| *w != magic) {
        let kind = if want == IDX_IMAGES_MAGIC {
            "image"
        } else {
            "label"
        };
        return Err(invalid(
            path,
            format_args!("magic number {magic} is not an IDX {kind} file (expected {want}): is it the other file of the pair?"),
        ));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(invalid(
            path,
            format_args!(
                "{} bytes is shorter than the {header}-byte IDX header (truncated?)",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let shape = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x");
    let have = bytes.len() - header;
    match want {
        Some(w) if w == have => {}
        Some(w) if w > have => {
            return Err(invalid(path, format_args!("header says {shape} = {w} bytes of data but the file holds {have} (truncated?)")))
        }
        Some(w) => {
            return Err(invalid(path, format_args!("header says {shape} = {w} bytes of data but the file holds {have} (trailing bytes?)")))
        }
        None => return Err(invalid(path, format_args!("header dimensions {shape} overflow"))),
    }
    let mut data = bytes;
    data.drain(..header);
    Ok(IdxArray { magic, dims, data })
}

/// An image set from an IDX image file (magic 2051, count x rows x columns, one channel) and
/// its IDX label file (magic 2049, same count, labels below `classes`).
pub fn read_idx_pair(images: &Path, labels: &Path, classes: usize) -> Result<ImageSet> {
    read_pair(images, labels, classes, "check the path")
}

fn read_pair(images: &Path, labels: &Path, classes: usize, hint: &str) -> Result<ImageSet> {
    pair_from_bytes(
        images,
        read_maybe_gz(images, hint)?,
        labels,
        read_maybe_gz(labels, hint)?,
        classes,
    )
}

/// An image set from in-memory IDX image and label files (raw or gzip), e.g. embedded in the
/// binary; the names label the data in errors.
pub fn idx_pair_from_bytes(
    images_name: &str,
    images: &[u8],
    labels_name: &str,
    labels: &[u8],
    classes: usize,
) -> Result<ImageSet> {
    let (ip, lp) = (Path::new(images_name), Path::new(labels_name));
    pair_from_bytes(
        ip,
        gunzip_if_needed(ip, images.to_vec())?,
        lp,
        gunzip_if_needed(lp, labels.to_vec())?,
        classes,
    )
}

fn pair_from_bytes(
    images: &Path,
    img_bytes: Vec<u8>,
    labels: &Path,
    lab_bytes: Vec<u8>,
    classes: usize,
) -> Result<ImageSet> {
    let img = parse_idx(images, img_bytes, Some(IDX_IMAGES_MAGIC))?;
    let lab = parse_idx(labels, lab_bytes, Some(IDX_LABELS_MAGIC))?;
    let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
    if h == 0 || w == 0 {
        return Err(invalid(images, format_args!("{h}x{w} images")));
    }
    if lab.dims[0] != n {
        return Err(Error::Invalid(format!(
            "{} holds {n} images but {} holds {} labels",
            images.display(),
            labels.display(),
            lab.dims[0]
        )));
    }
    if let Some((r, &l)) = lab
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(invalid(
            labels,
            format_args!("label {l} in record {r} is outside 0..{}", classes - 1),
        ));
    }
    Ok(ImageSet {
        images: img.data,
        labels: lab.data.iter().map(|&l| l as u32).collect(),
        channels: 1,
        height: h,
        width: w,
        classes,
        class_names: Vec::new(),
    })
}

/// `dir/stem`, else `dir/stem.gz`; `None` when neither exists.
fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
        .into_iter()
        .find(|p| p.exists())
}

/// Fashion-MNIST from a folder of the four official IDX files (raw or .gz).
pub(crate) fn load_fashion_mnist(dir: &Path, split: Split) -> Result<ImageSet> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let (images, labels) = (
        format!("{prefix}-images-idx3-ubyte"),
        format!("{prefix}-labels-idx1-ubyte"),
    );
    let d = Dataset::FashionMnist;
    let dir = d.locate(dir, &[&images, &format!("{images}.gz")])?;
    let hint = d.how_to_get();
    let path = |stem: &str| find(&dir, stem).unwrap_or_else(|| dir.join(format!("{stem}.gz")));
    let mut set = read_pair(&path(&images), &path(&labels), 10, &hint)?;
    if (set.height, set.width) != (28, 28) {
        return Err(invalid(
            &path(&images),
            format_args!(
                "{}x{} images, Fashion-MNIST's are 28x28",
                set.height, set.width
            ),
        ));
    }
    set.class_names = FASHION_MNIST_CLASSES.map(String::from).to_vec();
    Ok(set)
}
