//! Cheap checks and codecs for the image bytes we store: sniffing, completeness, header
//! dimensions, and 16-bit PNG depth maps.

use std::io::Cursor;

use image::{ImageBuffer, ImageFormat, Luma};

/// What is wrong with image bytes. Callers decide whose fault it is: a user's input file is
/// quarantined or refused (exit 2), a damaged file of the dataset is corrupt (exit 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The file ends before its end marker.
    #[error("{what} ({bytes} bytes): truncated")]
    Truncated {
        /// Which marker is missing (`JPEG has no end-of-image marker`).
        what: &'static str,
        /// The file's length.
        bytes: usize,
    },
    /// Neither JPEG nor PNG.
    #[error("unsupported image codec {0}")]
    Unsupported(String),
    /// Not a PNG where one was required.
    #[error("not a PNG file")]
    NotPng,
    /// A depth PNG that is not 16-bit grayscale.
    #[error("depth PNG must be 16-bit grayscale, found bit depth {depth}, colour type {colour}")]
    NotGray16 {
        /// Bit depth found.
        depth: u8,
        /// PNG colour type found.
        colour: u8,
    },
    /// A width or height of 0.
    #[error("image is {width}x{height}: empty")]
    Empty {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// Beyond [`MAX_IMAGE_SIDE`] or [`MAX_IMAGE_PIXELS`].
    #[error(
        "image header claims {width}x{height} pixels, beyond the limit of {MAX_IMAGE_SIDE} a side \
         and {} megapixels (a decompression bomb or a damaged header)",
        MAX_IMAGE_PIXELS >> 20
    )]
    TooLarge {
        /// Width claimed.
        width: u32,
        /// Height claimed.
        height: u32,
    },
    /// The header cannot be read.
    #[error("{0}")]
    Header(String),
    /// The compressed pixel data does not decode.
    #[error("pixel data does not decode ({0})")]
    Pixels(String),
    /// A 16-bit PNG that does not decode.
    #[error("{0}")]
    Decode(String),
    /// Encoding failed.
    #[error("{0}")]
    Encode(String),
}

/// Result of the media functions.
pub type MediaResult<T> = Result<T, MediaError>;

/// Codec of encoded image bytes, from their magic number.
pub fn sniff_codec(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else {
        None
    }
}

/// Checks that an encoded image is complete (not cut short), without decoding it: a JPEG ends
/// with an EOI marker (allowing a little trailing padding), a PNG with an IEND chunk.
pub fn check_complete(bytes: &[u8], codec: &str) -> MediaResult<()> {
    match codec {
        "jpeg" => {
            let tail = &bytes[bytes.len().saturating_sub(64)..];
            if tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
                Ok(())
            } else {
                Err(MediaError::Truncated {
                    what: "JPEG has no end-of-image marker",
                    bytes: bytes.len(),
                })
            }
        }
        "png" => {
            if bytes.len() >= 12 && &bytes[bytes.len() - 8..bytes.len() - 4] == b"IEND" {
                Ok(())
            } else {
                Err(MediaError::Truncated {
                    what: "PNG has no IEND chunk",
                    bytes: bytes.len(),
                })
            }
        }
        other => Err(MediaError::Unsupported(other.to_string())),
    }
}

/// Width and height from the image header.
pub fn image_dims(bytes: &[u8]) -> MediaResult<(u32, u32)> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| MediaError::Header(e.to_string()))?
        .into_dimensions()
        .map_err(|e| MediaError::Header(e.to_string()))
}

/// Width, height, bit depth and colour type from a PNG's IHDR chunk.
pub fn png_header(bytes: &[u8]) -> MediaResult<(u32, u32, u8, u8)> {
    if sniff_codec(bytes) != Some("png") || bytes.len() < 33 || &bytes[12..16] != b"IHDR" {
        return Err(MediaError::NotPng);
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Ok((be(16), be(20), bytes[24], bytes[25]))
}

/// Checks that `bytes` is a complete 16-bit grayscale PNG and returns its size.
pub fn check_png16(bytes: &[u8]) -> MediaResult<(u32, u32)> {
    let (w, h, depth, colour) = png_header(bytes)?;
    if depth != 16 || colour != 0 {
        return Err(MediaError::NotGray16 { depth, colour });
    }
    check_complete(bytes, "png")?;
    Ok((w, h))
}

/// A decoded depth map: raw stored units, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Stored values, 0 = invalid.
    pub values: Vec<u16>,
}

impl DepthImage {
    /// Value at pixel (x, y).
    pub fn at(&self, x: u32, y: u32) -> u16 {
        self.values[(y * self.width + x) as usize]
    }

    /// Resized to `w` x `h` by nearest neighbour ([`nearest_source`]), so invalid (0) pixels
    /// never bleed into valid ones; row-major stored units.
    pub fn resized_nearest(&self, w: usize, h: usize) -> Vec<u16> {
        let (sx, sy) = (self.width as f64 / w as f64, self.height as f64 / h as f64);
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            let yy = nearest_source(y, sy, self.height);
            for x in 0..w {
                out.push(self.at(nearest_source(x, sx, self.width), yy));
            }
        }
        out
    }
}

/// The source pixel a nearest-neighbour resize takes for target pixel `t` when each target
/// pixel spans `scale` source pixels: `floor((t + 0.5) * scale)`, clamped to the `n` source
/// pixels.
pub fn nearest_source(t: usize, scale: f64, n: u32) -> u32 {
    (((t as f64 + 0.5) * scale) as u32).min(n.saturating_sub(1))
}

/// Largest side of a stored image, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest stored image, in pixels (64 megapixels: a 8K frame is 33). A header that claims
/// more is a decompression bomb or a damaged file; it is refused before anything is
/// allocated.
pub const MAX_IMAGE_PIXELS: u64 = 64 << 20;

/// Refuses image sizes beyond [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_PIXELS`] (and empty ones).
pub fn check_dims(w: u32, h: u32) -> MediaResult<()> {
    if w == 0 || h == 0 {
        return Err(MediaError::Empty {
            width: w,
            height: h,
        });
    }
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(MediaError::TooLarge {
            width: w,
            height: h,
        });
    }
    Ok(())
}

/// Decoding limits matching [`check_dims`], with room for 16-bit RGBA.
pub(crate) fn limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(MAX_IMAGE_SIDE);
    l.max_image_height = Some(MAX_IMAGE_SIDE);
    l.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    l
}

/// Decodes an image completely (within [`check_dims`]'s limits), to prove that its pixel
/// data is intact: a valid header and end marker around a corrupt compressed stream pass
/// [`check_complete`] but fail here.
pub fn verify_decodes(bytes: &[u8]) -> MediaResult<()> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| MediaError::Header(e.to_string()))?;
    reader.limits(limits());
    reader
        .decode()
        .map(drop)
        .map_err(|e| MediaError::Pixels(e.to_string()))
}

/// Decodes a 16-bit grayscale PNG (within [`check_dims`]'s limits).
pub fn decode_png16(bytes: &[u8]) -> MediaResult<DepthImage> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
    reader.limits(limits());
    let img = reader
        .decode()
        .map_err(|e| MediaError::Decode(e.to_string()))?;
    let luma = img.into_luma16();
    Ok(DepthImage {
        width: luma.width(),
        height: luma.height(),
        values: luma.into_raw(),
    })
}

/// Encodes a 16-bit grayscale PNG (lossless).
pub fn encode_png16(depth: &DepthImage) -> MediaResult<Vec<u8>> {
    let buf: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(depth.width, depth.height, depth.values.clone())
            .ok_or_else(|| MediaError::Encode("depth buffer does not match its size".into()))?;
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::from(buf)
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|e| MediaError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png16_round_trip_and_truncation() {
        let d = DepthImage {
            width: 3,
            height: 2,
            values: vec![0, 1, 2, 1000, 65535, 7],
        };
        let png = encode_png16(&d).unwrap();
        assert_eq!(check_png16(&png).unwrap(), (3, 2));
        assert_eq!(decode_png16(&png).unwrap(), d);
        let cut = &png[..png.len() - 10];
        let err = check_png16(cut).unwrap_err();
        assert!(matches!(err, MediaError::Truncated { .. }), "{err:?}");
        assert!(err.to_string().ends_with("bytes): truncated"), "{err}");
        assert_eq!(sniff_codec(&png), Some("png"));
        assert_eq!(sniff_codec(b"GIF89a"), None);
    }

    /// A PNG whose header and IEND are intact but whose compressed data is garbage passes
    /// the cheap checks and fails the decode; headers claiming huge sizes are refused.
    #[test]
    fn corrupt_pixel_data_and_bomb_headers_are_caught() {
        let d = DepthImage {
            width: 64,
            height: 64,
            values: (0..64 * 64).map(|v| v as u16).collect(),
        };
        let mut png = encode_png16(&d).unwrap();
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        for b in &mut png[idat + 8..idat + 40] {
            *b ^= 0x5A;
        }
        assert!(check_png16(&png).is_ok());
        assert!(verify_decodes(&png).is_err());
        assert!(decode_png16(&png).is_err());
        assert!(
            check_dims(160_000, 120_000)
                .unwrap_err()
                .to_string()
                .contains("decompression bomb")
        );
        assert!(check_dims(64_000, 48).is_err());
        assert!(check_dims(0, 10).is_err());
        assert!(check_dims(7680, 4320).is_ok());
        // A header rewritten to claim 64000x48000 is refused by the decoder's limits too.
        let mut bomb = encode_png16(&d).unwrap();
        bomb[16..20].copy_from_slice(&64_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&48_000u32.to_be_bytes());
        assert!(verify_decodes(&bomb).is_err());
    }

    #[test]
    fn jpeg_completeness() {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 30]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::from(img)
            .write_to(&mut out, ImageFormat::Jpeg)
            .unwrap();
        let jpg = out.into_inner();
        assert_eq!(sniff_codec(&jpg), Some("jpeg"));
        assert!(check_complete(&jpg, "jpeg").is_ok());
        assert_eq!(image_dims(&jpg).unwrap(), (8, 8));
        assert!(check_complete(&jpg[..jpg.len() / 2], "jpeg").is_err());
    }
}
