//! 3D user-defined SQL functions for curation, registered in every SQL session.
//!
//! | function | returns |
//! |---|---|
//! | `rotation_angle_deg(pose_a, pose_b)` | angle of the relative rotation between two `world_from_camera` poses, degrees |
//! | `viewing_angle_deg(pose_a, pose_b)` | angle between the two cameras' optical axes (+z), degrees; ignores roll |
//! | `camera_distance_m(pose_a, pose_b)` | distance between the two camera centres, metres |
//! | `valid_depth_ratio(depth)` | fraction of non-zero pixels of a 16-bit PNG depth blob |
//! | `byte_length(blob)` | size of a binary value in bytes (DataFusion's `octet_length` takes strings only) |
//!
//! Poses are 16 `f64` row-major (a `FixedSizeList` or `List` of `Float64`). A NULL argument
//! gives NULL; so does a depth blob that does not decode as a 16-bit PNG.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use spatialsv_store::geometry;

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    RotationAngle,
    ViewingAngle,
    CameraDistance,
    ValidDepthRatio,
    ByteLength,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GeoUdf {
    kind: Kind,
    signature: Signature,
}

impl GeoUdf {
    fn new(kind: Kind) -> Self {
        let arity = if matches!(kind, Kind::ValidDepthRatio | Kind::ByteLength) {
            1
        } else {
            2
        };
        Self {
            kind,
            signature: Signature::any(arity, Volatility::Immutable),
        }
    }
}

fn is_pose_type(t: &DataType) -> bool {
    match t {
        DataType::FixedSizeList(f, 16) | DataType::List(f) | DataType::LargeList(f) => {
            f.data_type() == &DataType::Float64
        }
        DataType::Null => true,
        _ => false,
    }
}

impl ScalarUDFImpl for GeoUdf {
    fn name(&self) -> &str {
        match self.kind {
            Kind::RotationAngle => "rotation_angle_deg",
            Kind::ViewingAngle => "viewing_angle_deg",
            Kind::CameraDistance => "camera_distance_m",
            Kind::ValidDepthRatio => "valid_depth_ratio",
            Kind::ByteLength => "byte_length",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let types = || {
            arg_types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.kind {
            Kind::ByteLength | Kind::ValidDepthRatio => {
                if !matches!(arg_types, [t] if is_binary_type(t)) {
                    return plan_err!(
                        "{}(blob) takes one binary value, got {}",
                        self.name(),
                        types()
                    );
                }
            }
            _ => {
                if !arg_types.iter().all(is_pose_type) {
                    return plan_err!(
                        "{}(pose_a, pose_b) takes two 4x4 poses (16 float64, row-major), got {}",
                        self.name(),
                        types()
                    );
                }
            }
        }
        Ok(if self.kind == Kind::ByteLength {
            DataType::Int64
        } else {
            DataType::Float64
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if self.kind == Kind::ByteLength {
            return Ok(ColumnarValue::Array(Arc::new(byte_length(&arrays[0])?)));
        }
        let out: Float64Array = match self.kind {
            Kind::ValidDepthRatio => valid_depth_ratio(&arrays[0])?,
            kind => {
                let a = poses(&arrays[0])?;
                let b = poses(&arrays[1])?;
                a.iter()
                    .zip(&b)
                    .map(|(a, b)| match (a, b) {
                        (Some(a), Some(b)) => match kind {
                            Kind::RotationAngle => Some(rotation_angle_deg(a, b)),
                            Kind::ViewingAngle => viewing_angle_deg(a, b),
                            _ => Some(camera_distance_m(a, b)),
                        },
                        _ => None,
                    })
                    .collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// Reads a column of poses; NULL rows (or rows holding a NULL number) become `None`, and a
/// row that is not 16 numbers is an error naming the row: a 15- or 17-element "pose" is a
/// mistake in the query, not a missing value.
fn poses(arr: &ArrayRef) -> Result<Vec<Option<[f64; 16]>>> {
    let rows = arr.len();
    let get = |r: usize, values: ArrayRef| -> Result<Option<[f64; 16]>> {
        let Some(v) = values.as_primitive_opt::<Float64Type>() else {
            return Ok(None);
        };
        if v.len() != 16 {
            return Err(DataFusionError::Execution(format!(
                "row {r}: a pose is 16 float64 (4x4 row-major), this one has {}",
                v.len()
            )));
        }
        if v.null_count() > 0 {
            return Ok(None);
        }
        let mut m = [0.0; 16];
        m.copy_from_slice(v.values());
        Ok(Some(m))
    };
    // One walk over the rows for every list layout a pose may come in.
    let each = |is_null: &dyn Fn(usize) -> bool, value: &dyn Fn(usize) -> ArrayRef| {
        (0..rows)
            .map(|r| {
                if is_null(r) {
                    Ok(None)
                } else {
                    get(r, value(r))
                }
            })
            .collect()
    };
    match arr.data_type() {
        DataType::Null => Ok(vec![None; rows]),
        DataType::FixedSizeList(..) => {
            let l = arr.as_fixed_size_list();
            each(&|r| l.is_null(r), &|r| l.value(r))
        }
        DataType::List(_) => {
            let l = arr.as_list::<i32>();
            each(&|r| l.is_null(r), &|r| l.value(r))
        }
        DataType::LargeList(_) => {
            let l = arr.as_list::<i64>();
            each(&|r| l.is_null(r), &|r| l.value(r))
        }
        other => Err(DataFusionError::Plan(format!(
            "expected a pose (16 float64), got {other}"
        ))),
    }
}

/// Angle of the relative rotation between two poses, degrees ([`geometry::relative_rotation_deg`]).
pub fn rotation_angle_deg(a: &[f64; 16], b: &[f64; 16]) -> f64 {
    geometry::relative_rotation_deg(a, b)
}

/// Angle between the optical axes (third columns of the rotations), degrees; `None` (NULL)
/// when an axis has no length.
pub fn viewing_angle_deg(a: &[f64; 16], b: &[f64; 16]) -> Option<f64> {
    geometry::vector_angle_deg(&geometry::optical_axis(a), &geometry::optical_axis(b), 0.0)
}

/// Distance between the translations (camera centres in world), in the poses' units.
pub fn camera_distance_m(a: &[f64; 16], b: &[f64; 16]) -> f64 {
    (geometry::translation(a) - geometry::translation(b)).norm()
}

/// Fraction of non-zero pixels of a 16-bit PNG; `None` when it does not decode.
pub fn depth_valid_ratio(png: &[u8]) -> Option<f64> {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).ok()?;
    let luma = img.to_luma16();
    let total = luma.as_raw().len();
    if total == 0 {
        return None;
    }
    let valid = luma.as_raw().iter().filter(|v| **v != 0).count();
    Some(valid as f64 / total as f64)
}

fn is_binary_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
    )
}

/// The values of a binary column of any binary type (NULL for a NULL-typed column).
fn binary_values(arr: &ArrayRef) -> Result<Vec<Option<&[u8]>>> {
    Ok(match arr.data_type() {
        DataType::Binary => arr.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => arr.as_binary::<i64>().iter().collect(),
        DataType::BinaryView => arr.as_binary_view().iter().collect(),
        DataType::Null => vec![None; arr.len()],
        other => {
            return Err(DataFusionError::Plan(format!(
                "expected a binary value, got {other}"
            )));
        }
    })
}

fn valid_depth_ratio(arr: &ArrayRef) -> Result<Float64Array> {
    Ok(binary_values(arr)?
        .into_iter()
        .map(|b| b.and_then(depth_valid_ratio))
        .collect())
}

fn byte_length(arr: &ArrayRef) -> Result<arrow::array::Int64Array> {
    Ok(binary_values(arr)?
        .into_iter()
        .map(|b| b.map(|b| b.len() as i64))
        .collect())
}

/// Names of the functions registered by [`register`].
pub const UDF_NAMES: [&str; 5] = [
    "rotation_angle_deg",
    "viewing_angle_deg",
    "camera_distance_m",
    "valid_depth_ratio",
    "byte_length",
];

/// Every spatialsv UDF (for session builders, e.g. a distributed worker's).
pub fn all() -> Vec<std::sync::Arc<ScalarUDF>> {
    [
        Kind::RotationAngle,
        Kind::ViewingAngle,
        Kind::CameraDistance,
        Kind::ValidDepthRatio,
        Kind::ByteLength,
    ]
    .into_iter()
    .map(|kind| std::sync::Arc::new(ScalarUDF::new_from_impl(GeoUdf::new(kind))))
    .collect()
}

/// Registers every spatialsv UDF in `ctx`.
pub fn register(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf(f.as_ref().clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaw(deg: f64, t: [f64; 3]) -> [f64; 16] {
        geometry::from_axis_angle_deg([0.0, 1.0, 0.0], deg, t)
    }

    fn roll(deg: f64) -> [f64; 16] {
        geometry::from_axis_angle_deg([0.0, 0.0, 1.0], deg, [0.0; 3])
    }

    #[test]
    fn rotation_angle_by_hand() {
        let a = yaw(10.0, [0.0; 3]);
        let b = yaw(40.0, [0.0; 3]);
        assert!((rotation_angle_deg(&a, &b) - 30.0).abs() < 1e-9);
        assert!(rotation_angle_deg(&a, &a).abs() < 1e-6);
        // 180 degrees is the edge of acos' domain.
        assert!(
            (rotation_angle_deg(&yaw(0.0, [0.0; 3]), &yaw(180.0, [0.0; 3])) - 180.0).abs() < 1e-6
        );
    }

    #[test]
    fn viewing_angle_ignores_roll() {
        let a = yaw(0.0, [0.0; 3]);
        assert!(viewing_angle_deg(&a, &roll(70.0)).unwrap().abs() < 1e-9);
        assert!((rotation_angle_deg(&a, &roll(70.0)) - 70.0).abs() < 1e-9);
        assert!((viewing_angle_deg(&a, &yaw(25.0, [0.0; 3])).unwrap() - 25.0).abs() < 1e-9);
    }

    #[test]
    fn camera_distance_by_hand() {
        let a = yaw(0.0, [1.0, 2.0, 3.0]);
        let b = yaw(90.0, [4.0, 6.0, 3.0]);
        assert!((camera_distance_m(&a, &b) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn valid_ratio_of_a_png16() {
        let mut img: image::ImageBuffer<image::Luma<u16>, Vec<u16>> = image::ImageBuffer::new(4, 2);
        img.put_pixel(0, 0, image::Luma([1000]));
        img.put_pixel(3, 1, image::Luma([65535]));
        let mut png = std::io::Cursor::new(Vec::new());
        image::DynamicImage::from(img)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        assert_eq!(depth_valid_ratio(png.get_ref()), Some(0.25));
        assert_eq!(depth_valid_ratio(b"not a png"), None);
    }
}
