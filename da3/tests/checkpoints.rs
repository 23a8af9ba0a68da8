//! Bad checkpoint folders: each is one line naming the file and what is wrong.

use std::path::{Path, PathBuf};

use spatialsv_da3::{Da3Error, load};

type B = burn::backend::Flex;

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_alt3")
}

/// A copy of the tiny checkpoint whose weights `edit` rewrites (name, shape, f32 data).
fn with_weights(edit: impl Fn(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(tiny().join("config.json"), dir.path().join("config.json")).expect("copy");
    let bytes = std::fs::read(tiny().join("model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut t: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    t.sort();
    edit(&mut t);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = t
        .iter()
        .map(|(k, s, d)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .expect("view"),
            )
        })
        .collect();
    let out = safetensors::serialize(views, None).expect("serialize");
    std::fs::write(dir.path().join("model.safetensors"), out).expect("write");
    dir
}

fn error(dir: &Path) -> String {
    match load::<B>(dir, &Default::default()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => {
            assert!(e.is_user_error(), "{e}");
            assert!(matches!(e, Da3Error::BadCheckpoint(_)), "{e}");
            let line = e.to_string();
            assert!(!line.contains('\n'), "one line: {line}");
            line
        }
    }
}

#[test]
fn the_tiny_checkpoint_loads_with_its_hash() {
    let a = load::<B>(&tiny(), &Default::default()).expect("loads");
    let copy = with_weights(|_| {});
    let b = load::<B>(copy.path(), &Default::default()).expect("a copy loads");
    // The hash is of the bytes, not the path; a re-serialised file is other bytes.
    assert_eq!(a.hash.len(), 64);
    assert_eq!(
        spatialsv_da3::licence(&a.config.model_name)
            .split(' ')
            .next(),
        Some("unknown")
    );
    assert_eq!(spatialsv_da3::licence("da3-small"), "Apache-2.0");
    assert!(spatialsv_da3::licence("da3-giant").contains("non-commercial"));
    drop(b);
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = with_weights(|t| {
        t.retain(|(k, _, _)| k != "model.head.scratch.layer2_rn.weight");
    });
    let e = error(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("missing") && e.contains("layer2_rn"),
        "{e}"
    );
}

#[test]
fn a_wrong_shape_is_named() {
    let dir = with_weights(|t| {
        let x = t
            .iter_mut()
            .find(|(k, _, _)| k == "model.backbone.pretrained.cls_token")
            .expect("cls");
        x.1 = vec![1, 2, 12];
    });
    let e = error(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("cls_token"),
        "{e}"
    );
}

#[test]
fn an_unused_tensor_is_named() {
    let dir = with_weights(|t| {
        t.push(("model.head.extra.weight".into(), vec![2], vec![0; 8]));
    });
    let e = error(dir.path());
    assert!(e.contains("not part of") && e.contains("extra"), "{e}");
}

#[test]
fn a_truncated_file_is_named() {
    let dir = with_weights(|_| {});
    let p = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&p).expect("read");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("write");
    let e = error(dir.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn bad_configs_are_named() {
    let dir = with_weights(|_| {});
    let cfg = dir.path().join("config.json");
    for (text, want) in [
        (
            r#"{"model_name": "da3-small", "colour": 1}"#,
            "unknown field",
        ),
        (r#"{"model_name": "da3-tiny"}"#, "not a DA3 preset"),
        (r#"{"name": "da3-small"}"#, "model_name"),
        ("not json", "config.json"),
    ] {
        std::fs::write(&cfg, text).expect("write");
        let e = error(dir.path());
        assert!(e.contains("config.json") && e.contains(want), "{text}: {e}");
    }
    std::fs::write(&cfg, r#"{"model_name": "da3mono-large"}"#).expect("write");
    let e = load::<B>(dir.path(), &Default::default()).expect_err("mono is not ported");
    assert!(
        matches!(e, Da3Error::Unsupported(_)) && e.is_user_error(),
        "{e}"
    );
}

#[test]
fn a_spatialsv_run_is_not_a_da3_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.toml"), "").expect("write");
    let e = error(dir.path());
    assert!(e.contains("spatialsv run directory"), "{e}");
    assert!(!spatialsv_da3::is_checkpoint_dir(dir.path()));
    assert!(spatialsv_da3::is_checkpoint_dir(&tiny()));
}
