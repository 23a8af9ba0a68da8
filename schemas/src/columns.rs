//! The typed read side: named, typed access to the columns of a batch read from a table.
//!
//! A reader asks for a column by name and gets the array type the table declares for it, or
//! a [`SchemaError`] naming the table and column: never a positional `column(i)` that a
//! reordered projection would silently bind to the wrong column, never a panic on a file of
//! another layout. [`Columns::new`] checks every column present against the table's schema
//! (name known, type, nullability), so a batch that passed it can be read without further
//! checks; a projection (any subset, in any order) is fine.

use arrow::array::{
    Array, AsArray, BinaryArray, BooleanArray, FixedSizeListArray, Float32Array, Float64Array,
    Int32Array, Int64Array, ListArray, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int32Type, Int64Type, TimestampNanosecondType,
};

use crate::table::Table;
use crate::validate::{SchemaError, types_match};

/// A batch of (some columns of) `table`, checked against the table's schema.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    pub(crate) table: Table,
    pub(crate) batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    /// Checks that every column of `batch` is a column of `table` with the declared type,
    /// and that non-nullable columns hold no nulls.
    pub fn new(table: Table, batch: &'a RecordBatch) -> Result<Self, SchemaError> {
        let schema = table.schema();
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let err = |message: String| SchemaError {
                table,
                column: Some(field.name().clone()),
                row: None,
                message,
            };
            let want = schema
                .field_with_name(field.name())
                .map_err(|_| err(format!("not a column of {table}")))?;
            if !types_match(field.data_type(), want.data_type()) {
                return Err(err(format!(
                    "type is {}, expected {}",
                    field.data_type(),
                    want.data_type()
                )));
            }
            if !want.is_nullable() && array.null_count() > 0 {
                let row = (0..array.len()).find(|&r| array.is_null(r));
                return Err(SchemaError {
                    row,
                    ..err("null in a non-nullable column".into())
                });
            }
        }
        Ok(Self { table, batch })
    }

    /// The table the batch belongs to.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Rows in the batch.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    fn column(&self, name: &str, want: &str) -> Result<&'a dyn Array, SchemaError> {
        let array = self.batch.column_by_name(name).ok_or_else(|| SchemaError {
            table: self.table,
            column: Some(name.to_string()),
            row: None,
            message: "column was not read".into(),
        })?;
        let schema = self.table.schema();
        let declared = schema.field_with_name(name).map(Field::data_type).ok();
        let fits = matches!(
            (want, declared),
            ("utf8", Some(DataType::Utf8))
                | ("i64", Some(DataType::Int64))
                | ("i32", Some(DataType::Int32))
                | ("f64", Some(DataType::Float64))
                | ("f32", Some(DataType::Float32))
                | ("bool", Some(DataType::Boolean))
                | ("binary", Some(DataType::Binary))
                | ("timestamp", Some(DataType::Timestamp(..)))
                | ("list", Some(DataType::List(_)))
                | ("pose", Some(DataType::FixedSizeList(_, 16)))
                | ("vector", Some(DataType::FixedSizeList(..)))
        );
        if !fits {
            return Err(SchemaError {
                table: self.table,
                column: Some(name.to_string()),
                row: None,
                message: format!("read as {want}, but the table declares {declared:?}"),
            });
        }
        Ok(array.as_ref())
    }

    /// A `Utf8` column.
    pub fn strings(&self, name: &str) -> Result<&'a StringArray, SchemaError> {
        Ok(self.column(name, "utf8")?.as_string::<i32>())
    }

    /// An `Int64` column.
    pub fn i64s(&self, name: &str) -> Result<&'a Int64Array, SchemaError> {
        Ok(self.column(name, "i64")?.as_primitive::<Int64Type>())
    }

    /// An `Int32` column.
    pub fn i32s(&self, name: &str) -> Result<&'a Int32Array, SchemaError> {
        Ok(self.column(name, "i32")?.as_primitive::<Int32Type>())
    }

    /// A `Float64` column.
    pub fn f64s(&self, name: &str) -> Result<&'a Float64Array, SchemaError> {
        Ok(self.column(name, "f64")?.as_primitive::<Float64Type>())
    }

    /// A `Float32` column.
    pub fn f32s(&self, name: &str) -> Result<&'a Float32Array, SchemaError> {
        Ok(self.column(name, "f32")?.as_primitive::<Float32Type>())
    }

    /// A `Boolean` column.
    pub fn bools(&self, name: &str) -> Result<&'a BooleanArray, SchemaError> {
        Ok(self.column(name, "bool")?.as_boolean())
    }

    /// A `Binary` column (images, encoded maps).
    pub fn binaries(&self, name: &str) -> Result<&'a BinaryArray, SchemaError> {
        Ok(self.column(name, "binary")?.as_binary::<i32>())
    }

    /// A UTC nanosecond timestamp column.
    pub fn timestamps(&self, name: &str) -> Result<&'a TimestampNanosecondArray, SchemaError> {
        Ok(self
            .column(name, "timestamp")?
            .as_primitive::<TimestampNanosecondType>())
    }

    /// A `List` column (e.g. `clips.frame_indices`).
    pub fn lists(&self, name: &str) -> Result<&'a ListArray, SchemaError> {
        Ok(self.column(name, "list")?.as_list::<i32>())
    }

    /// A fixed-length `f64` vector column.
    pub fn vectors(&self, name: &str) -> Result<Vectors<'a>, SchemaError> {
        Ok(Vectors(self.column(name, "vector")?.as_fixed_size_list()))
    }

    /// A pose column (16 `f64`, row-major).
    pub fn poses(&self, name: &str) -> Result<Poses<'a>, SchemaError> {
        Ok(Poses(self.column(name, "pose")?.as_fixed_size_list()))
    }
}

/// A fixed-length `f64` vector column (e.g. `objects.centre`, `object_views.bbox`).
#[derive(Debug, Clone, Copy)]
pub struct Vectors<'a>(&'a FixedSizeListArray);

impl Vectors<'_> {
    /// The values of `row` (empty when null).
    pub fn get(&self, row: usize) -> Vec<f64> {
        if self.0.is_null(row) {
            return Vec::new();
        }
        self.0
            .value(row)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec()
    }
}

/// A pose column: 16 `f64` per row, row-major 4x4.
#[derive(Debug, Clone, Copy)]
pub struct Poses<'a>(&'a FixedSizeListArray);

impl Poses<'_> {
    /// The pose of `row`, `None` when null.
    pub fn get(&self, row: usize) -> Option<[f64; 16]> {
        if self.0.is_null(row) {
            return None;
        }
        let values = self.0.value(row);
        let values = values.as_primitive::<Float64Type>();
        let mut m = [0.0; 16];
        if values.len() != 16 {
            return None;
        }
        m.copy_from_slice(values.values());
        Some(m)
    }

    /// Whether the pose of `row` is null.
    pub fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::ArrayRef;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(fields: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let schema = Schema::new(
            fields
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(
            Arc::new(schema),
            fields.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let b = batch(vec![
            ("split", Arc::new(StringArray::from(vec!["train"]))),
            ("scene_id", Arc::new(StringArray::from(vec!["s0"]))),
        ]);
        let c = Columns::new(Table::Scenes, &b).unwrap();
        assert_eq!(c.strings("scene_id").unwrap().value(0), "s0");
        assert_eq!(c.strings("split").unwrap().value(0), "train");
        let err = c.strings("source").unwrap_err().to_string();
        assert_eq!(err, "table scenes, column source: column was not read");
        let err = c.i64s("scene_id").unwrap_err().to_string();
        assert!(err.contains("read as i64"), "{err}");
    }

    #[test]
    fn a_foreign_batch_is_an_error_not_a_panic() {
        let wrong_type = batch(vec![("scene_id", Arc::new(Int64Array::from(vec![3])))]);
        let err = Columns::new(Table::Scenes, &wrong_type).unwrap_err();
        assert_eq!(err.column.as_deref(), Some("scene_id"));
        assert!(err.message.contains("type is Int64"), "{err}");
        let unknown = batch(vec![("colour", Arc::new(StringArray::from(vec!["red"])))]);
        let err = Columns::new(Table::Scenes, &unknown)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "table scenes, column colour: not a column of scenes");
        let nulls = batch(vec![(
            "scene_id",
            Arc::new(StringArray::from(vec![Some("a"), None])),
        )]);
        let err = Columns::new(Table::Scenes, &nulls).unwrap_err();
        assert_eq!(err.row, Some(1));
    }
}
