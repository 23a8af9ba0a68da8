//! PLY meshes: the vertex positions of ScanNet's `*_vh_clean_2.ply`, which its object
//! annotations index.

use std::path::Path;

use spatialsv_store::{Error, Result};

/// The vertex positions of a PLY mesh (ASCII or binary little-endian; the `vertex` element
/// must come first, as in ScanNet's `*_vh_clean_2.ply`). Other elements are not read.
pub fn read_ply_vertices(path: &Path) -> Result<Vec<[f64; 3]>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::bad_input(path, format!("cannot read the mesh ({e})")))?;
    let bad = |m: String| Error::bad_input(path, m);
    let end = bytes
        .windows(11)
        .position(|w| w == b"end_header\n")
        .ok_or_else(|| bad("not a PLY file (no end_header line)".into()))?;
    let header = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = header.lines();
    if lines.next().map(str::trim) != Some("ply") {
        return Err(bad("not a PLY file (no 'ply' magic)".into()));
    }
    let (mut format, mut count, mut props) = (None, None, Vec::new());
    let mut in_vertex = false;
    for line in lines {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["format", f, _] => format = Some(f.to_string()),
            ["element", name, n] => {
                if count.is_some() {
                    in_vertex = false;
                    continue;
                }
                if *name != "vertex" {
                    return Err(bad(format!(
                        "the first element is '{name}', expected 'vertex'"
                    )));
                }
                count = Some(
                    n.parse::<usize>()
                        .map_err(|e| bad(format!("vertex count: {e}")))?,
                );
                in_vertex = true;
            }
            ["property", "list", ..] if in_vertex => {
                return Err(bad("a list property in the vertex element".into()));
            }
            ["property", ty, name] if in_vertex => props.push((ty.to_string(), name.to_string())),
            _ => {}
        }
    }
    let n = count.ok_or_else(|| bad("no vertex element".into()))?;
    let at = |name: &str| {
        props
            .iter()
            .position(|(_, p)| p == name)
            .ok_or_else(|| bad(format!("the vertex element has no '{name}' property")))
    };
    let (ix, iy, iz) = (at("x")?, at("y")?, at("z")?);
    let body = &bytes[end + 11..];
    let mut out = Vec::with_capacity(n.min(50_000_000));
    match format.as_deref() {
        Some("ascii") => {
            let text = String::from_utf8_lossy(body);
            let mut rows = text.lines();
            for k in 0..n {
                let row = rows
                    .next()
                    .ok_or_else(|| bad(format!("{n} vertices declared, {k} found")))?;
                let v: Vec<f64> = row
                    .split_whitespace()
                    .map(|x| x.parse::<f64>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| bad(format!("vertex {k}: {e}")))?;
                if v.len() < props.len() {
                    return Err(bad(format!("vertex {k} has {} values", v.len())));
                }
                out.push([v[ix], v[iy], v[iz]]);
            }
        }
        Some("binary_little_endian") => {
            let size = |t: &str| match t {
                "char" | "uchar" | "int8" | "uint8" => Some(1),
                "short" | "ushort" | "int16" | "uint16" => Some(2),
                "int" | "uint" | "float" | "int32" | "uint32" | "float32" => Some(4),
                "double" | "float64" => Some(8),
                _ => None,
            };
            let mut offsets = Vec::new();
            let mut stride = 0;
            for (t, name) in &props {
                let s = size(t).ok_or_else(|| bad(format!("property {name} has type {t}")))?;
                offsets.push(stride);
                stride += s;
            }
            if body.len() < n * stride {
                return Err(bad(format!(
                    "{n} vertices of {stride} bytes declared, {} bytes present",
                    body.len()
                )));
            }
            let read = |k: usize, p: usize| -> f64 {
                let o = k * stride + offsets[p];
                match props[p].0.as_str() {
                    "double" | "float64" => {
                        f64::from_le_bytes(body[o..o + 8].try_into().unwrap_or([0; 8]))
                    }
                    _ => f64::from(f32::from_le_bytes(
                        body[o..o + 4].try_into().unwrap_or([0; 4]),
                    )),
                }
            };
            for (p, name) in [(ix, "x"), (iy, "y"), (iz, "z")] {
                if !matches!(
                    props[p].0.as_str(),
                    "float" | "float32" | "double" | "float64"
                ) {
                    return Err(bad(format!("vertex {name} is {}, not a float", props[p].0)));
                }
            }
            for k in 0..n {
                out.push([read(k, ix), read(k, iy), read(k, iz)]);
            }
        }
        other => {
            return Err(bad(format!(
                "PLY format {} is not read (ascii or binary_little_endian)",
                other.unwrap_or("missing")
            )));
        }
    }
    Ok(out)
}
