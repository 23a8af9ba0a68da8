//! NumPy `.npz` files (a zip of `.npy` arrays, stored or deflated), as `np.savez` and
//! `np.savez_compressed` write them: little-endian numbers and booleans, C order.

use spatialsv_schemas::Invalid;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// One array: its shape and values as `f64` (exact for every dtype read here but 64-bit
/// integers above 2^53, which no teacher output holds).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Shape, C order.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
}

impl Array {
    /// Values as `f32`.
    pub fn f32s(&self) -> Vec<f32> {
        self.data.iter().map(|v| *v as f32).collect()
    }
}

/// Reads every array of an `.npz` file by name (without the `.npy` suffix). Errors say what
/// is wrong in words.
pub fn read(path: &Path) -> Result<BTreeMap<String, Array>, Invalid> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not an .npz (zip): {e}"))?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| format!("member {i} unreadable: {e}"))?;
        let name = member.name().to_string();
        let Some(key) = name.strip_suffix(".npy") else {
            continue;
        };
        let mut bytes = Vec::with_capacity(member.size() as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{name}: cannot read: {e}"))?;
        out.insert(
            key.to_string(),
            parse_npy(&bytes).map_err(|e| format!("{name}: {e}"))?,
        );
    }
    Ok(out)
}

/// Parses one `.npy` file.
pub fn parse_npy(bytes: &[u8]) -> Result<Array, Invalid> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(Invalid(format!(".npy format version {v} is not supported"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr
        .trim_start_matches(['\'', '"'])
        .split(['\'', '"'])
        .next()
        .unwrap_or("");
    if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err("Fortran-ordered arrays are not supported (save with C order)".into());
    }
    let shape_text = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let shape: Vec<usize> = shape_text
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_text}"))
        })
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    let (size, conv): (usize, fn(&[u8]) -> f64) = match descr {
        "<f8" => (8, |b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        "<f4" => (4, |b| {
            f64::from(f32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
        }),
        "<f2" => (2, |b| {
            f64::from(half_to_f32(u16::from_le_bytes([b[0], b[1]])))
        }),
        "<i8" => (8, |b| {
            i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64
        }),
        "<i4" => (4, |b| {
            f64::from(i32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
        }),
        "<u2" => (2, |b| f64::from(u16::from_le_bytes([b[0], b[1]]))),
        "|u1" | "|i1" | "|b1" => (1, |b| f64::from(b[0])),
        other => {
            return Err(Invalid(format!(
                "dtype {other} is not supported (use float32, float64, float16, int64, int32, uint8 or bool, little-endian)"
            )));
        }
    };
    if body.len() < n * size {
        return Err(Invalid(format!(
            "truncated: shape {shape:?} needs {} bytes, {} present",
            n * size,
            body.len()
        )));
    }
    let data = body[..n * size].chunks_exact(size).map(conv).collect();
    Ok(Array { shape, data })
}

/// The text after `'key':` in a header dict, up to the end of the dict.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let colon = rest.find(':')?;
    Some(rest[colon + 1..].trim_start())
}

/// IEEE half to single precision.
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// One `.npy` (version 1.0, little-endian f32, C order) as NumPy writes it.
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let body: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy("<f4", &shape, &body)
}

/// A `.npy` (version 1.0) of `descr` and `shape` (Python's tuple text) around `body`.
fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(body);
    out
}

/// Writes f32 arrays as an `.npz` (stored members, as `np.savez` writes), through a
/// temporary file and a rename.
pub fn write_f32(path: &Path, arrays: &[(String, Vec<usize>, Vec<f32>)]) -> Result<(), Invalid> {
    use std::io::Write as _;
    let tmp = path.with_extension("npz.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("cannot create: {e}"))?;
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, shape, data) in arrays {
        if shape.iter().product::<usize>() != data.len() {
            return Err(format!(
                "array {name}: shape {shape:?} does not hold {} values",
                data.len()
            )
            .into());
        }
        zip.start_file(format!("{name}.npy"), opts)
            .map_err(|e| format!("{name}: {e}"))?;
        zip.write_all(&npy_f32(shape, data))
            .map_err(|e| format!("{name}: {e}"))?;
    }
    zip.finish().map_err(|e| format!("cannot finish: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename into place: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_dtypes_and_mistakes() {
        let body: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy(&npy("<f4", "(2, 3)", &body)).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1.5, -2.0, 3.25, 0.0, 7.0, 8.0]);
        let s = parse_npy(&npy(
            "<i8",
            "(2,)",
            &[
                5, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
            ],
        ))
        .unwrap();
        assert_eq!(
            (s.shape.clone(), s.data.clone()),
            (vec![2], vec![5.0, -1.0])
        );
        let scalar = parse_npy(&npy("<f8", "()", &2.5f64.to_le_bytes())).unwrap();
        assert_eq!((scalar.shape.len(), scalar.data[0]), (0, 2.5));
        // 1.0 and -2.0 as halves.
        let h = parse_npy(&npy("<f2", "(2,)", &[0x00, 0x3c, 0x00, 0xc0])).unwrap();
        assert_eq!(h.data, vec![1.0, -2.0]);
        assert!(
            parse_npy(&npy("<f4", "(4,)", &body[..8]))
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            parse_npy(&npy(">f4", "(1,)", &body[..4]))
                .unwrap_err()
                .contains("dtype >f4")
        );
        assert!(
            parse_npy(b"PK\x03\x04garbage")
                .unwrap_err()
                .contains("magic")
        );
    }
}
