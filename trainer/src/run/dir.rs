//! The run directory: the one place that knows the name of every file a training run writes,
//! which kind of model a run holds, and where its checkpoints are.
//!
//! ```text
//! runs/NAME/config.toml                 the resolved training config
//! runs/NAME/model.json                  the 3D model's sizes (a 3D run)
//! runs/NAME/mllm.json                   the multimodal model's sizes (a multimodal run)
//! runs/NAME/vocab.json, tokenizer.json  the multimodal run's tokenizer (ours, and as Hugging Face's)
//! runs/NAME/baseline.json               the training median depth for eval's baselines
//! runs/NAME/checkpoints/step-NNNNNNNN/  model.mpk, ema.mpk (with ema_decay > 0), optim.mpk,
//!                                       state.json (written to a temporary directory, then
//!                                       renamed: atomic)
//! runs/NAME/latest                      name of the newest complete checkpoint
//! runs/NAME/_spatialsv, data/           a spatialsv dataset with the `metrics` and `runs` tables
//! ```
//!
//! A new model family adds its sizes file here (and a [`RunKind`]), nothing else.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// Which model a run directory holds, told by its sizes file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// The 3D model (`spatialsv train --config configs/train.toml`): `model.json`.
    Spatial,
    /// The multimodal model (`configs/mllm.toml`): `mllm.json`.
    Mllm,
}

impl RunKind {
    /// Every kind, in the order [`RunDir::kind`] checks them.
    pub const ALL: [RunKind; 2] = [RunKind::Mllm, RunKind::Spatial];

    /// The file of the run directory that holds this kind's model sizes.
    pub fn sizes_file(self) -> &'static str {
        match self {
            RunKind::Spatial => "model.json",
            RunKind::Mllm => "mllm.json",
        }
    }

    /// How this kind is named in messages, with the commands that use it.
    fn described(self) -> &'static str {
        match self {
            RunKind::Spatial => {
                "a 3D model run (spatialsv train with configs/train.toml), not a multimodal one: evaluate it with `eval` without --qa"
            }
            RunKind::Mllm => "a multimodal (mllm) run: evaluate it with `eval --qa` or `ask`",
        }
    }
}

/// What a finished run was trained as: the `role` column of the `runs` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRole {
    /// A 3D model trained on labels only.
    Teacher,
    /// A 3D model trained on labels and pseudo-labels.
    Student,
    /// The multimodal model.
    Mllm,
}

impl RunRole {
    /// The name stored in the `runs` table.
    pub fn as_str(self) -> &'static str {
        match self {
            RunRole::Teacher => "teacher",
            RunRole::Student => "student",
            RunRole::Mllm => "mllm",
        }
    }
}

impl std::fmt::Display for RunRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run directory (it need not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

/// The file names of a run directory.
const CONFIG: &str = "config.toml";
const BASELINE: &str = "baseline.json";
const VOCAB: &str = "vocab.json";
const HF_TOKENIZER: &str = "tokenizer.json";
const CHECKPOINTS: &str = "checkpoints";
const LATEST: &str = "latest";
const LATEST_TMP: &str = ".latest.tmp";
/// A checkpoint directory's name: `step-` and the step, 8 digits.
const STEP_PREFIX: &str = "step-";

impl RunDir {
    /// The run directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// Its path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run's name: the directory's last component (`run` for a bare root).
    pub fn run_id(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
    }

    /// The resolved training config.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG)
    }

    /// The model sizes of a run of `kind`.
    pub fn sizes_path(&self, kind: RunKind) -> PathBuf {
        self.root.join(kind.sizes_file())
    }

    /// What `eval`'s trivial baselines need from the training data.
    pub fn baseline_path(&self) -> PathBuf {
        self.root.join(BASELINE)
    }

    /// The multimodal run's word ids.
    pub fn vocab_path(&self) -> PathBuf {
        self.root.join(VOCAB)
    }

    /// The multimodal run's tokenizer as a Hugging Face `tokenizer.json`.
    pub fn hf_tokenizer_path(&self) -> PathBuf {
        self.root.join(HF_TOKENIZER)
    }

    /// The folder of checkpoints.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join(CHECKPOINTS)
    }

    /// The `latest` pointer.
    pub fn latest_pointer(&self) -> PathBuf {
        self.root.join(LATEST)
    }

    /// The checkpoint of step `step` (it need not exist).
    pub fn checkpoint(&self, step: usize) -> Checkpoint {
        Checkpoint {
            dir: self
                .checkpoints_dir()
                .join(format!("{STEP_PREFIX}{step:08}")),
        }
    }

    /// The temporary directory a checkpoint of `step` is written into before its rename.
    pub(crate) fn checkpoint_staging(&self, step: usize) -> Checkpoint {
        Checkpoint {
            dir: self
                .checkpoints_dir()
                .join(format!(".tmp-{STEP_PREFIX}{step:08}")),
        }
    }

    /// Points `latest` at the checkpoint of `step` (a temporary file renamed over it).
    pub(crate) fn publish_latest(&self, step: usize) -> std::io::Result<()> {
        let tmp = self.root.join(LATEST_TMP);
        std::fs::write(&tmp, format!("{STEP_PREFIX}{step:08}\n"))?;
        std::fs::rename(&tmp, self.latest_pointer())
    }

    /// The kind of run the directory holds, from its sizes file; `None` when it has none.
    pub fn kind(&self) -> Option<RunKind> {
        RunKind::ALL
            .into_iter()
            .find(|k| self.sizes_path(*k).exists())
    }

    /// Refuses a run of another kind than `want` as the user's mistake, naming what it is
    /// (or that it holds no checkpoint, or no sizes file).
    pub fn require_kind(&self, want: RunKind) -> Result<()> {
        match self.kind() {
            Some(k) if k == want => Ok(()),
            Some(k) => Err(TrainError::User(format!(
                "run {} is {}",
                self.root.display(),
                k.described()
            ))),
            None => {
                self.require_checkpoint()?;
                Err(TrainError::User(format!(
                    "run {} has no {}: not a {} run",
                    self.root.display(),
                    want.sizes_file(),
                    match want {
                        RunKind::Spatial => "3D model",
                        RunKind::Mllm => "multimodal",
                    }
                )))
            }
        }
    }

    /// The newest complete checkpoint, if any.
    pub fn latest(&self) -> Option<Checkpoint> {
        let name = std::fs::read_to_string(self.latest_pointer()).ok()?;
        let c = Checkpoint {
            dir: self.checkpoints_dir().join(name.trim()),
        };
        c.is_complete().then_some(c)
    }

    /// Whether the run has its checkpoint of step `steps` as its newest (it finished).
    pub fn finished(&self, steps: usize) -> bool {
        self.latest()
            .is_some_and(|c| c.dir == self.checkpoint(steps).dir)
    }

    /// The names of the complete checkpoints, oldest first.
    fn checkpoint_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.checkpoints_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| Checkpoint { dir: e.path() }.is_complete())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(STEP_PREFIX))
            .collect();
        names.sort();
        names
    }

    /// The newest checkpoint, or a user error that says what the run directory holds instead
    /// (nothing, or a `latest` pointer to a step that is gone).
    pub fn require_checkpoint(&self) -> Result<Checkpoint> {
        if let Some(c) = self.latest() {
            return Ok(c);
        }
        let out = &self.root;
        let present = self.checkpoint_names();
        let pointer = std::fs::read_to_string(self.latest_pointer()).ok();
        Err(TrainError::User(match (pointer, present.is_empty()) {
            (_, true) => format!("no checkpoint in run directory {}", out.display()),
            (Some(p), false) => format!(
                "run {}: `{LATEST}` names {} but that checkpoint is missing or incomplete; present: {} \
                 (write one of them into {})",
                out.display(),
                p.trim(),
                present.join(", "),
                self.latest_pointer().display()
            ),
            (None, false) => format!(
                "run {}: no `{LATEST}` pointer, but checkpoints {} are present (write the newest \
                 into {})",
                out.display(),
                present.join(", "),
                self.latest_pointer().display()
            ),
        }))
    }

    /// Loads the run's resolved training config.
    pub fn load_config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        Ok(spatialsv_store::load_toml(&self.config_path())?)
    }
}

/// One checkpoint directory of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether it was completely written (its state is the last file written).
    pub fn is_complete(&self) -> bool {
        self.state_path().exists()
    }

    /// The loop's state (step, sampler, dataset version).
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The trained weights; burn's recorders take the path without its extension
    /// ([`Checkpoint::model_stem`]).
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.mpk")
    }

    /// [`Checkpoint::model_path`] without the extension, as burn's recorders take it.
    pub fn model_stem(&self) -> PathBuf {
        self.dir.join("model")
    }

    /// The moving average of the weights (runs with `ema_decay > 0`).
    pub fn ema_path(&self) -> PathBuf {
        self.dir.join("ema.mpk")
    }

    /// [`Checkpoint::ema_path`] without the extension.
    pub fn ema_stem(&self) -> PathBuf {
        self.dir.join("ema")
    }

    /// The optimiser's moments.
    pub fn optim_path(&self) -> PathBuf {
        self.dir.join("optim.mpk")
    }

    /// [`Checkpoint::optim_path`] without the extension.
    pub fn optim_stem(&self) -> PathBuf {
        self.dir.join("optim")
    }

    /// The weights the checkpoint is used with: the moving average of a run trained with
    /// `ema_decay > 0`, else the trained weights.
    pub fn weights_path(&self) -> PathBuf {
        let ema = self.ema_path();
        if ema.exists() { ema } else { self.model_path() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_checkpoints_and_messages() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("a"));
        assert_eq!(run.run_id(), "a");
        assert_eq!(run.kind(), None);
        let err = run.require_checkpoint().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no checkpoint in run directory"),
            "{err}"
        );
        // A checkpoint without its state is incomplete; with it, `latest` finds it.
        let c = run.checkpoint(12);
        std::fs::create_dir_all(c.dir()).unwrap();
        assert!(run.latest().is_none());
        std::fs::write(c.state_path(), "{}").unwrap();
        let err = run.require_checkpoint().unwrap_err().to_string();
        assert!(
            err.contains("no `latest` pointer") && err.contains("step-00000012"),
            "{err}"
        );
        run.publish_latest(12).unwrap();
        assert_eq!(run.latest(), Some(c.clone()));
        assert!(run.finished(12) && !run.finished(13));
        assert_eq!(c.weights_path(), c.model_path());
        std::fs::write(c.ema_path(), "").unwrap();
        assert_eq!(c.weights_path(), c.ema_path());
        // Kinds from the sizes files; a run of the other kind is the user's mistake.
        std::fs::write(run.sizes_path(RunKind::Spatial), "{}").unwrap();
        assert_eq!(run.kind(), Some(RunKind::Spatial));
        assert!(run.require_kind(RunKind::Spatial).is_ok());
        let err = run.require_kind(RunKind::Mllm).unwrap_err();
        assert!(
            err.is_user_error() && err.to_string().contains("3D model run"),
            "{err}"
        );
        std::fs::write(run.sizes_path(RunKind::Mllm), "{}").unwrap();
        assert_eq!(run.kind(), Some(RunKind::Mllm));
        let err = run.require_kind(RunKind::Spatial).unwrap_err().to_string();
        assert!(err.contains("multimodal (mllm) run"), "{err}");
    }
}
