//! Validated wrappers: a `RecordBatch` that has passed `TryFrom` matches its table's schema
//! (names, order, types, nullability) and its enumerated and geometric columns hold legal
//! values, so code further down never re-checks them.

use crate::invalid::Invalid;
use std::fmt;
use std::str::FromStr;

use arrow::array::{
    Array, AsArray, FixedSizeListArray, Float64Array, Int32Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Float64Type, Int32Type, SchemaRef};

use crate::table::{SourceKind, Split, Table};

/// A batch that does not fit its table. Always names the table, and the column and row when
/// the problem is a value.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    /// Table the batch was meant for.
    pub table: Table,
    /// Offending column, when one is to blame.
    pub column: Option<String>,
    /// Offending row within the batch, when one is to blame.
    pub row: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table {}", self.table)?;
        if let Some(c) = &self.column {
            write!(f, ", column {c}")?;
        }
        if let Some(r) = self.row {
            write!(f, ", row {r}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SchemaError {}

impl SchemaError {
    fn new(table: Table, column: Option<&str>, row: Option<usize>, message: String) -> Self {
        Self {
            table,
            column: column.map(str::to_string),
            row,
            message,
        }
    }
}

/// Checks that `batch` has exactly the columns of `expected`, in order, with equal types and
/// no nulls in non-nullable columns. Metadata is not compared: files written by other tools
/// drop it.
fn check_layout(
    table: Table,
    expected: &SchemaRef,
    batch: &RecordBatch,
) -> Result<(), SchemaError> {
    let got = batch.schema();
    for (i, want) in expected.fields().iter().enumerate() {
        let Some(have) = got.fields().get(i) else {
            return Err(SchemaError::new(
                table,
                Some(want.name()),
                None,
                format!(
                    "missing column (batch has {} columns, expected {})",
                    got.fields().len(),
                    expected.fields().len()
                ),
            ));
        };
        if have.name() != want.name() {
            return Err(SchemaError::new(
                table,
                Some(want.name()),
                None,
                format!(
                    "column {i} is named '{}', expected '{}'",
                    have.name(),
                    want.name()
                ),
            ));
        }
        if !types_match(have.data_type(), want.data_type()) {
            return Err(SchemaError::new(
                table,
                Some(want.name()),
                None,
                format!(
                    "type is {}, expected {}",
                    have.data_type(),
                    want.data_type()
                ),
            ));
        }
        let column = batch.column(i);
        if !want.is_nullable() && column.null_count() > 0 {
            let row = (0..column.len()).find(|&r| column.is_null(r));
            return Err(SchemaError::new(
                table,
                Some(want.name()),
                row,
                "null in a non-nullable column".into(),
            ));
        }
    }
    if got.fields().len() > expected.fields().len() {
        let extra = &got.fields()[expected.fields().len()];
        return Err(SchemaError::new(
            table,
            Some(extra.name()),
            None,
            "unexpected extra column".into(),
        ));
    }
    Ok(())
}

/// Type equality that ignores the names and nullability of list items (writers differ on
/// `item` vs `element`), but not their types.
pub(crate) fn types_match(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => types_match(x.data_type(), y.data_type()),
        (DataType::FixedSizeList(x, n), DataType::FixedSizeList(y, m)) => {
            n == m && types_match(x.data_type(), y.data_type())
        }
        _ => a == b,
    }
}

fn check_enum<T: FromStr<Err = String>>(
    table: Table,
    batch: &RecordBatch,
    name: &str,
) -> Result<(), SchemaError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(());
    };
    let strings: &StringArray = col.as_string();
    for (row, v) in strings.iter().enumerate() {
        if let Some(v) = v {
            T::from_str(v).map_err(|e| SchemaError::new(table, Some(name), Some(row), e))?;
        }
    }
    Ok(())
}

fn check_positive_i32(table: Table, batch: &RecordBatch, name: &str) -> Result<(), SchemaError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(());
    };
    let values: &Int32Array = col.as_primitive::<Int32Type>();
    for (row, v) in values.iter().enumerate() {
        if let Some(v) = v.filter(|v| *v <= 0) {
            return Err(SchemaError::new(
                table,
                Some(name),
                Some(row),
                format!("must be positive, got {v}"),
            ));
        }
    }
    Ok(())
}

fn check_positive_f64(table: Table, batch: &RecordBatch, name: &str) -> Result<(), SchemaError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(());
    };
    let values: &Float64Array = col.as_primitive::<Float64Type>();
    for (row, v) in values.iter().enumerate() {
        if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(SchemaError::new(
                table,
                Some(name),
                Some(row),
                format!("must be finite and positive, got {v}"),
            ));
        }
    }
    Ok(())
}

/// Frames from scans must carry intrinsics (only video may leave them unknown).
fn check_scan_intrinsics(batch: &RecordBatch) -> Result<(), SchemaError> {
    let Some(source) = batch.column_by_name("source") else {
        return Ok(());
    };
    let source: &StringArray = source.as_string();
    for name in ["fx", "fy", "cx", "cy"] {
        let Some(col) = batch.column_by_name(name) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            if col.is_null(row) && source.value(row) == "scan" {
                return Err(SchemaError::new(
                    Table::Frames,
                    Some(name),
                    Some(row),
                    "a scan frame needs intrinsics (only video may leave them null)".into(),
                ));
            }
        }
    }
    Ok(())
}

/// A pose must be finite, its rotation orthonormal with determinant +1 (within 1e-3), and its
/// last row `0 0 0 1`.
fn check_poses(table: Table, batch: &RecordBatch, name: &str) -> Result<(), SchemaError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(());
    };
    let poses: &FixedSizeListArray = col.as_fixed_size_list();
    let values = poses.values().as_primitive::<Float64Type>();
    for row in 0..poses.len() {
        if poses.is_null(row) {
            continue;
        }
        let start = poses.value_offset(row) as usize;
        let m: Vec<f64> = (0..16).map(|i| values.value(start + i)).collect();
        if let Err(msg) = check_pose(&m) {
            return Err(SchemaError::new(table, Some(name), Some(row), msg.0));
        }
    }
    Ok(())
}

/// Largest absolute translation component a stored pose may have (1000 km). Scans and
/// reconstructions live well inside it; a value beyond is a unit or parsing error (a
/// translation of 1e308 would make every loss infinite).
pub const MAX_TRANSLATION_M: f64 = 1e6;

/// Checks one row-major 4x4 rigid transform; the message says what is wrong.
pub fn check_pose(m: &[f64]) -> Result<(), Invalid> {
    if m.len() != 16 {
        return Err(Invalid(format!("pose has {} values, expected 16", m.len())));
    }
    if let Some(v) = m.iter().find(|v| !v.is_finite()) {
        return Err(Invalid(format!("pose is not finite (contains {v})")));
    }
    let t = [m[3], m[7], m[11]];
    if let Some(v) = t.iter().find(|v| v.abs() > MAX_TRANSLATION_M) {
        return Err(Invalid(format!(
            "translation component {v:e} is beyond {MAX_TRANSLATION_M:e} (metres, or the \
             pose's units): not a camera in a scene"
        )));
    }
    let bottom = [m[12], m[13], m[14], m[15]];
    if bottom != [0.0, 0.0, 0.0, 1.0] {
        return Err(Invalid(format!(
            "last row is {bottom:?}, expected [0, 0, 0, 1]"
        )));
    }
    let r = |i: usize, j: usize| m[i * 4 + j];
    let mut worst: f64 = 0.0;
    for i in 0..3 {
        for j in 0..3 {
            let dot: f64 = (0..3).map(|k| r(k, i) * r(k, j)).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((dot - want).abs());
        }
    }
    if worst > 1e-3 {
        return Err(Invalid(format!(
            "rotation is not orthonormal (|R^T R - I| max {worst:.2e})"
        )));
    }
    let det = r(0, 0) * (r(1, 1) * r(2, 2) - r(1, 2) * r(2, 1))
        - r(0, 1) * (r(1, 0) * r(2, 2) - r(1, 2) * r(2, 0))
        + r(0, 2) * (r(1, 0) * r(2, 1) - r(1, 1) * r(2, 0));
    if det < 0.0 {
        return Err(Invalid(format!(
            "rotation has determinant {det:.3} (a reflection, not a rotation)"
        )));
    }
    Ok(())
}

/// Declares a validated wrapper type for one table.
macro_rules! validated {
    ($(#[$meta:meta])* $name:ident, $table:expr, |$batch:ident| $checks:block) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(RecordBatch);

        impl $name {
            /// The table this wrapper validates.
            pub const TABLE: Table = $table;

            /// The validated batch.
            pub fn batch(&self) -> &RecordBatch {
                &self.0
            }

            /// Unwraps the validated batch.
            pub fn into_inner(self) -> RecordBatch {
                self.0
            }

            /// Number of rows.
            pub fn num_rows(&self) -> usize {
                self.0.num_rows()
            }

            /// Typed access to the columns by name.
            pub fn columns(&self) -> crate::Columns<'_> {
                crate::Columns {
                    table: $table,
                    batch: &self.0,
                }
            }
        }

        impl TryFrom<RecordBatch> for $name {
            type Error = SchemaError;

            fn try_from($batch: RecordBatch) -> Result<Self, SchemaError> {
                check_layout($table, &$table.schema(), &$batch)?;
                $checks
                Ok($name($batch))
            }
        }
    };
}

validated!(
    /// A validated batch of the `scenes` table.
    ScenesBatch, Table::Scenes, |batch| {
        check_enum::<Split>(Table::Scenes, &batch, "split")?;
        check_enum::<SourceKind>(Table::Scenes, &batch, "source")?;
    }
);

validated!(
    /// A validated batch of the `frames` table: legal splits and sources, positive sizes and
    /// focal lengths, rigid finite poses.
    FramesBatch, Table::Frames, |batch| {
        let t = Table::Frames;
        check_enum::<Split>(t, &batch, "split")?;
        check_enum::<SourceKind>(t, &batch, "source")?;
        for c in ["width", "height", "depth_width", "depth_height"] {
            check_positive_i32(t, &batch, c)?;
        }
        for c in ["fx", "fy", "depth_fx", "depth_fy", "depth_scale_m"] {
            check_positive_f64(t, &batch, c)?;
        }
        check_poses(t, &batch, "world_from_camera")?;
        check_scan_intrinsics(&batch)?;
    }
);

validated!(
    /// A validated batch of the `clips` table.
    ClipsBatch, Table::Clips, |batch| {
        check_enum::<Split>(Table::Clips, &batch, "split")?;
    }
);

validated!(
    /// A validated batch of the `quarantine` table.
    QuarantineBatch, Table::Quarantine, |batch| {}
);

validated!(
    /// A validated batch of the `pseudo_labels` table.
    PseudoLabelsBatch, Table::PseudoLabels, |batch| {
        let t = Table::PseudoLabels;
        check_enum::<Split>(t, &batch, "split")?;
        check_positive_i32(t, &batch, "width")?;
        check_positive_i32(t, &batch, "height")?;
        check_poses(t, &batch, "reference_from_camera")?;
        check_enum::<crate::RejectKind>(t, &batch, "reject_kind")?;
    }
);

validated!(
    /// A validated batch of the `runs` table.
    RunsBatch, Table::Runs, |batch| {}
);

validated!(
    /// A validated batch of the `metrics` table.
    MetricsBatch, Table::Metrics, |batch| {
        check_enum::<Split>(Table::Metrics, &batch, "split")?;
    }
);

/// Validates a batch against any table by name.
impl Table {
    /// Checks that `batch` fits this table (layout and values).
    pub fn validate(self, batch: &RecordBatch) -> Result<(), SchemaError> {
        let b = batch.clone();
        match self {
            Table::Scenes => ScenesBatch::try_from(b).map(drop),
            Table::Frames => FramesBatch::try_from(b).map(drop),
            Table::Clips => ClipsBatch::try_from(b).map(drop),
            Table::Quarantine => QuarantineBatch::try_from(b).map(drop),
            Table::PseudoLabels => PseudoLabelsBatch::try_from(b).map(drop),
            Table::Runs => RunsBatch::try_from(b).map(drop),
            Table::Metrics => MetricsBatch::try_from(b).map(drop),
            Table::Objects => ObjectsBatch::try_from(b).map(drop),
            Table::ObjectViews => ObjectViewsBatch::try_from(b).map(drop),
            Table::Qa => QaBatch::try_from(b).map(drop),
        }
    }
}

validated!(
    /// A validated batch of the `objects` table.
    ObjectsBatch, Table::Objects, |batch| {
        check_enum::<Split>(Table::Objects, &batch, "split")?;
    }
);

validated!(
    /// A validated batch of the `object_views` table.
    ObjectViewsBatch, Table::ObjectViews, |batch| {
        check_enum::<Split>(Table::ObjectViews, &batch, "split")?;
        check_positive_f64(Table::ObjectViews, &batch, "depth_median_m")?;
    }
);

validated!(
    /// A validated batch of the `qa` table.
    QaBatch, Table::Qa, |batch| {
        check_enum::<Split>(Table::Qa, &batch, "split")?;
    }
);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, TimestampNanosecondArray};

    use super::*;

    fn scenes_batch(split: &str) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["s0"])),
            Arc::new(StringArray::from(vec!["scan"])),
            Arc::new(StringArray::from(vec!["/data/s0"])),
            Arc::new(StringArray::from(vec!["scannet"])),
            Arc::new(StringArray::from(vec![split])),
            Arc::new(Int64Array::from(vec![10])),
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(TimestampNanosecondArray::from(vec![0]).with_timezone("UTC")),
        ];
        RecordBatch::try_new(crate::scenes_schema(), cols).unwrap()
    }

    #[test]
    fn accepts_a_valid_batch() {
        let b = ScenesBatch::try_from(scenes_batch("train")).unwrap();
        assert_eq!(b.num_rows(), 1);
    }

    #[test]
    fn rejects_an_unknown_split_naming_column_and_row() {
        let err = ScenesBatch::try_from(scenes_batch("training")).unwrap_err();
        assert_eq!(err.column.as_deref(), Some("split"));
        assert_eq!(err.row, Some(0));
        assert_eq!(
            err.to_string(),
            "table scenes, column split, row 0: 'training' is not one of train, val, test"
        );
    }

    #[test]
    fn rejects_a_batch_of_another_table() {
        let err = FramesBatch::try_from(scenes_batch("train")).unwrap_err();
        assert_eq!(err.table, Table::Frames);
        assert!(
            err.to_string().contains("column 1 is named 'source'"),
            "{err}"
        );
    }

    #[test]
    fn pose_checks() {
        let identity = [
            1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
        ];
        assert!(check_pose(&identity).is_ok());
        let mut inf = identity;
        inf[3] = f64::NEG_INFINITY;
        assert!(check_pose(&inf).unwrap_err().contains("not finite"));
        let mut scaled = identity;
        scaled[0] = 2.0;
        assert!(check_pose(&scaled).unwrap_err().contains("orthonormal"));
        let mut mirror = identity;
        mirror[0] = -1.0;
        assert!(check_pose(&mirror).unwrap_err().contains("determinant"));
        let mut far = identity;
        far[7] = 1e308;
        assert!(
            check_pose(&far)
                .unwrap_err()
                .contains("translation component 1e308")
        );
        let mut bottom = identity;
        bottom[14] = 1.0;
        assert!(check_pose(&bottom).unwrap_err().contains("last row"));
    }
}
