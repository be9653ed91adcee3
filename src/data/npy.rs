//! NumPy's `.npy` format (version 1.0), little-endian and C-ordered: what `numpy.load` reads
//! with no options, for the per-image logits, predictions and inputs `autorep eval` writes.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// An element type `.npy` can hold here.
pub trait NpyElement: bytemuck::Pod {
    /// NumPy's `descr` for it.
    const DESCR: &'static str;
}
impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
}
impl NpyElement for i64 {
    const DESCR: &'static str = "<i8";
}

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // The data starts at a multiple of 64 bytes; the header ends with a newline.
    let unpadded = MAGIC.len() + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Write `data` (C order, `shape`) to `path`.
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(Error::Invalid(format!(
            "npy: shape {shape:?} does not hold {} values",
            data.len()
        )));
    }
    let io = |e: std::io::Error| Error::Invalid(format!("{}: {e}", path.display()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    f.write_all(&header(T::DESCR, shape)).map_err(io)?;
    f.write_all(bytemuck::cast_slice(data)).map_err(io)?;
    f.flush().map_err(io)
}

/// Read a `.npy` file this module wrote (or any little-endian, C-ordered one of the same
/// element type): (shape, values).
pub fn read_npy<T: NpyElement>(path: &Path) -> Result<(Vec<usize>, Vec<T>)> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "{}: not a readable .npy file: {why}",
            path.display()
        ))
    };
    let bytes =
        crate::files::read(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    if bytes.len() < 10 || &bytes[..8] != MAGIC {
        return Err(bad("no NumPy 1.0 magic"));
    }
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let dict = std::str::from_utf8(bytes.get(10..10 + len).ok_or_else(|| bad("short header"))?)
        .map_err(|_| bad("header is not text"))?;
    if !dict.contains(&format!("'descr': '{}'", T::DESCR))
        || !dict.contains("'fortran_order': False")
    {
        return Err(bad(&format!("expected {} in C order: {dict}", T::DESCR)));
    }
    let dims = dict
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| bad("bad shape")))
        .collect::<Result<Vec<_>>>()?;
    let body = &bytes[10 + len..];
    let n: usize = shape.iter().product();
    if body.len() != n * std::mem::size_of::<T>() {
        return Err(bad("data length does not match the shape"));
    }
    Ok((shape, bytemuck::pod_collect_to_vec(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_round_trips() {
        let h = header("<f4", &[3, 10]);
        assert_eq!(h.len() % 64, 0);
        assert_eq!(*h.last().unwrap(), b'\n');
        let dir = std::env::temp_dir().join(format!("autorep-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        let v: Vec<f32> = (0..30).map(|i| i as f32 * 0.5).collect();
        write_npy(&p, &[3, 10], &v).unwrap();
        assert_eq!(read_npy::<f32>(&p).unwrap(), (vec![3, 10], v));
        let q = dir.join("b.npy");
        write_npy(&q, &[4], &[1i64, -2, 3, 4]).unwrap();
        assert_eq!(read_npy::<i64>(&q).unwrap(), (vec![4], vec![1, -2, 3, 4]));
        assert!(read_npy::<f32>(&q).is_err(), "element type is checked");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
