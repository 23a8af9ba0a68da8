//! The committed fixture dataset `tests/fixtures/tiny` must be readable by the current code
//! and hold exactly what the seeded generator makes. Regenerate it on purpose with
//! `SPATIALSV_BLESS=1 cargo test --test tests fixture` (for example after a schema change).

use std::collections::BTreeSet;

use spatialsv_schemas::{Columns, Table};
use spatialsv_store::Dataset;
use spatialsv_store::datagen::{GenSpec, build_fixture, generate};

use super::tiny;

#[test]
fn committed_fixture_matches_the_generator() {
    let path = tiny();
    if std::env::var_os("SPATIALSV_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&path);
        build_fixture(&path).expect("building the fixture");
    }
    let ds = Dataset::open(&path).expect("opening tests/fixtures/tiny");
    assert_eq!(ds.versions().unwrap(), vec![0, 1, 2]);
    let m = ds.latest().unwrap();
    assert_eq!(m.rows("frames"), 20);
    assert_eq!(m.rows("scenes"), 5);
    assert_eq!(m.added["frames"].duplicates, 12);

    let batches = ds
        .read_table(&m, Table::Frames, Some(&["content_hash"]))
        .unwrap();
    let stored: BTreeSet<String> = batches
        .iter()
        .flat_map(|b| {
            Columns::new(Table::Frames, b)
                .unwrap()
                .strings("content_hash")
                .unwrap()
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let expected: BTreeSet<String> = generate(&GenSpec::default())
        .unwrap()
        .1
        .iter()
        .map(|f| f.content_hash())
        .collect();
    assert_eq!(stored, expected);
    for table in [Table::Frames, Table::Scenes] {
        for b in ds.read_table(&m, table, None).unwrap() {
            table.validate(&b).unwrap();
        }
    }
}
