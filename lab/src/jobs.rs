//! The jobs experiments are made of, as typed values: each knows the `spatialsv ...` line a
//! user would type for it and runs the libraries directly, saying the lines the command
//! says (the command files build these same values from their arguments, so a command and a
//! demo step print the same).
//!
//! An [`Env`] carries what a job needs from its caller: the object-store options of every
//! dataset it opens, where its progress goes and where its lines go.

use std::path::{Path, PathBuf};
use std::time::Instant;

use spatialsv_ingest::synth::{SynthManifest, SynthOptions, synthesize};
use spatialsv_ingest::video::{VideoOptions, ingest_videos, video_files};
use spatialsv_ingest::{IngestOptions, IngestReport, ScanFormat, SplitChoice};
use spatialsv_labeler::LabelConfig;
use spatialsv_labeler::job::{Shard, label, load_teachers_at};
use spatialsv_qa::{QaOptions, generate};
use spatialsv_schemas::Split;
use spatialsv_store::progress::Silent;
use spatialsv_store::{Dataset, Progress, StorageOptions};
use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::mllm::MllmConfig;
use spatialsv_trainer::mllm::train::{MllmStep, train_mllm};
use spatialsv_trainer::train::{StepReport, train};

use crate::error::{LabError, Result};
use crate::runner::Output;

/// What a job takes from its caller.
pub struct Env<'a> {
    storage: &'a StorageOptions,
    progress: &'a dyn Progress,
    say: &'a dyn Fn(&str) -> Result<()>,
    warn: &'a dyn Fn(&str),
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

impl<'a> Env<'a> {
    /// Datasets opened with `storage`; progress reported to `progress`; summary lines given
    /// to `say` (standard output, for the binary), warnings to `warn` (standard error).
    pub fn new(
        storage: &'a StorageOptions,
        progress: &'a dyn Progress,
        say: &'a dyn Fn(&str) -> Result<()>,
        warn: &'a dyn Fn(&str),
    ) -> Self {
        Env {
            storage,
            progress,
            say,
            warn,
        }
    }

    /// Says one line.
    pub fn say(&self, line: &str) -> Result<()> {
        (self.say)(line)
    }

    /// Warns about something that does not stop the job.
    pub fn warn(&self, line: &str) {
        (self.warn)(line);
    }

    /// Where progress goes.
    pub fn progress(&self) -> &dyn Progress {
        self.progress
    }

    /// Runs `work` with an environment that opens datasets as this one does, reports no
    /// progress and keeps what is said and warned, returned in order (for work running beside
    /// other work, whose lines would interleave). Built afresh inside the worker's thread.
    pub fn buffered<T>(
        storage: &StorageOptions,
        work: impl FnOnce(&Env) -> Result<T>,
    ) -> Result<(T, Vec<Output>)> {
        let said = std::cell::RefCell::new(Vec::new());
        let say = |l: &str| -> Result<()> {
            said.borrow_mut().push(Output::Say(l.to_string()));
            Ok(())
        };
        let warn = |l: &str| said.borrow_mut().push(Output::Warn(l.to_string()));
        let value = work(&Env::new(storage, &Silent, &say, &warn))?;
        Ok((value, said.into_inner()))
    }

    /// The storage options datasets are opened with.
    pub fn storage(&self) -> &'a StorageOptions {
        self.storage
    }

    /// Opens the dataset at `path` (a directory or `s3://...`).
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Dataset> {
        Ok(Dataset::open_with(path, self.storage)?)
    }

    /// Opens the dataset at `path`, creating an empty one if there is none.
    pub fn open_or_create(&self, path: impl AsRef<Path>) -> Result<Dataset> {
        Ok(Dataset::open_or_create_with(path, self.storage)?)
    }
}

/// A path as a shell word (quoted when it holds characters a shell would split on).
pub fn quote(p: impl AsRef<std::ffi::OsStr>) -> String {
    let s = p.as_ref().to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `spatialsv synth`: render a synthetic world into `out`.
#[derive(Debug, Clone)]
pub struct Synth {
    /// Output directory.
    pub out: PathBuf,
    /// The world.
    pub options: SynthOptions,
}

impl Synth {
    /// The command line.
    pub fn command_line(&self) -> String {
        let o = &self.options;
        let mut s = format!(
            "spatialsv synth --out {} --seed {} --scenes {} --videos {} --frames {} --resolution {}x{}",
            quote(&self.out),
            o.seed,
            o.scenes,
            o.videos,
            o.frames,
            o.width,
            o.height
        );
        for (flag, n) in [
            ("--test-scenes", o.test_scenes),
            ("--test-videos", o.test_videos),
            ("--video-frames", o.video_frames),
        ] {
            if n > 0 {
                s.push_str(&format!(" {flag} {n}"));
            }
        }
        if o.codec_check {
            s.push_str(" --codec-check");
        }
        s
    }

    /// Renders the world and says its summary.
    pub fn run(&self, env: &Env) -> Result<SynthManifest> {
        let t = Instant::now();
        let m = synthesize(&self.out, &self.options, env.progress())?;
        env.say(&m.summary(t.elapsed().as_secs_f64(), &self.out))?;
        Ok(m)
    }
}

/// What an [`Ingest`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Scans of one layout.
    Scans(ScanFormat),
    /// Video files.
    Video,
}

/// `spatialsv ingest FORMAT SRC --dataset DS --split SPLIT`, every other option at its
/// default.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// What `src` holds.
    pub source: Source,
    /// A scene directory or a parent of scenes; a video file or a directory of them.
    pub src: PathBuf,
    /// The dataset (created if missing).
    pub dataset: PathBuf,
    /// The split of everything ingested.
    pub split: Split,
}

impl Ingest {
    /// The ingest of `src` (of `source`) into `dataset`'s `split`.
    pub fn new(source: Source, src: PathBuf, dataset: &Path, split: Split) -> Ingest {
        Ingest {
            source,
            src,
            dataset: dataset.to_path_buf(),
            split,
        }
    }

    fn format(&self) -> &'static str {
        match self.source {
            Source::Scans(f) => f.name(),
            Source::Video => "video",
        }
    }

    /// The command line.
    pub fn command_line(&self) -> String {
        format!(
            "spatialsv ingest {} {} --dataset {} --split {}",
            self.format(),
            quote(&self.src),
            quote(&self.dataset),
            self.split
        )
    }

    /// Ingests and says the report (and warns of each scene's warnings).
    pub fn run(&self, env: &Env) -> Result<IngestReport> {
        let ds = env.open_or_create(&self.dataset)?;
        let split = SplitChoice::Fixed(self.split);
        let srcs = [self.src.clone()];
        let report = match self.source {
            Source::Video => {
                let opts = VideoOptions {
                    split,
                    ..VideoOptions::default()
                };
                let files = video_files(&srcs)?;
                ingest_videos(&ds, &files, &opts, "ingest video", env.progress())?
            }
            Source::Scans(format) => {
                let opts = IngestOptions {
                    split,
                    ..IngestOptions::default()
                };
                let scenes = spatialsv_ingest::list_scenes(Some(format), &srcs, &opts)?;
                // The operation recorded in the log, as `spatialsv ingest` names it.
                let operation =
                    format!("ingest {} {}", self.format(), self.src.display()).to_lowercase();
                spatialsv_ingest::ingest_scans(&ds, &scenes, &opts, &operation, env.progress())?
            }
        };
        say_ingest(env, &report, &ds)?;
        Ok(report)
    }
}

/// Says an ingest report's lines and warns of its scenes' warnings.
pub fn say_ingest(env: &Env, r: &IngestReport, ds: &Dataset) -> Result<()> {
    for line in r.lines(&ds.location()) {
        env.say(&line)?;
    }
    for s in &r.scenes {
        for w in &s.warnings {
            env.warn(&format!("warning: {w}"));
        }
    }
    Ok(())
}

/// `spatialsv train`: train the 3D model, or the multimodal model for a config of
/// `kind = "mllm"`.
#[derive(Debug, Clone)]
pub struct Train {
    /// The dataset.
    pub dataset: PathBuf,
    /// The config (the 3D model's defaults when omitted).
    pub config: Option<PathBuf>,
    /// The run directory.
    pub out: PathBuf,
    /// Continue the run in `out`.
    pub resume: bool,
}

impl Train {
    /// A run of `config` into `out` that continues the run there if one has a checkpoint.
    pub fn continuing(dataset: &Path, config: PathBuf, out: PathBuf) -> Train {
        let resume = spatialsv_trainer::RunDir::new(&out).latest().is_some();
        Train {
            dataset: dataset.to_path_buf(),
            config: Some(config),
            out,
            resume,
        }
    }

    /// The command line.
    pub fn command_line(&self) -> String {
        let mut line = format!("spatialsv train --dataset {}", quote(&self.dataset));
        if let Some(c) = &self.config {
            line.push_str(&format!(" --config {}", quote(c)));
        }
        line.push_str(&format!(" --out {}", quote(&self.out)));
        if self.resume {
            line.push_str(" --resume");
        }
        line
    }

    /// Trains and says where the run ended.
    pub fn run(&self, env: &Env) -> Result<()> {
        if let Some(p) = &self.config {
            let text = std::fs::read_to_string(p).map_err(|e| {
                LabError::User(format!("cannot read the config ({e}): {}", p.display()))
            })?;
            if MllmConfig::is_mllm_toml(&text) {
                let config: MllmConfig =
                    spatialsv_store::parse_toml(&text, &p.display().to_string())?;
                return self.run_mllm(env, &config);
            }
        }
        let config: TrainConfig = match &self.config {
            Some(p) => spatialsv_store::load_toml(p)?,
            None => TrainConfig::default(),
        };
        let ds = env.open(&self.dataset)?;
        let progress = env.progress();
        progress.start(config.steps as u64, "steps");
        let t = Instant::now();
        let mut last: Option<StepReport> = None;
        let mut at = 0;
        let result = train(&ds, &config, &self.out, self.resume, |r| {
            progress.advance(r.step.saturating_sub(at) as u64);
            at = r.step;
            let rate =
                r.step as f64 * config.batch_size as f64 / t.elapsed().as_secs_f64().max(1e-9);
            progress.message(&format!("loss {:.4}, {rate:.1} clips/s", r.loss));
            last = Some(r.clone());
        });
        progress.finish();
        result?;
        env.say(&StepReport::summary(
            last.as_ref(),
            config.steps,
            t.elapsed().as_secs_f64(),
            &self.out,
        ))
    }

    fn run_mllm(&self, env: &Env, config: &MllmConfig) -> Result<()> {
        let ds = env.open(&self.dataset)?;
        let progress = env.progress();
        progress.start(config.steps as u64, "steps");
        let t = Instant::now();
        let mut last: Option<MllmStep> = None;
        let mut plan = None;
        let mut at = 0;
        let result = train_mllm(
            &ds,
            config,
            &self.out,
            self.resume,
            |p| plan = Some(p.clone()),
            |r| {
                progress.advance(r.step.saturating_sub(at) as u64);
                at = r.step;
                let rate =
                    r.step as f64 * config.batch_size as f64 / t.elapsed().as_secs_f64().max(1e-9);
                progress.message(&format!(
                    "loss {:.4} (text {:.4}), {rate:.1} samples/s",
                    r.loss, r.text
                ));
                last = Some(r.clone());
            },
        );
        progress.finish();
        result?;
        if let Some(p) = plan {
            env.say(&p.line())?;
        }
        env.say(&MllmStep::summary(
            last.as_ref(),
            config.steps,
            t.elapsed().as_secs_f64(),
            &self.out,
        ))
    }
}

/// `spatialsv label`: pseudo-label the unlabeled clips with one teacher or an ensemble.
#[derive(Debug, Clone)]
pub struct Label {
    /// The dataset.
    pub dataset: PathBuf,
    /// Run directories of the teachers.
    pub teachers: Vec<PathBuf>,
    /// The labelling config (the defaults when omitted).
    pub config: Option<PathBuf>,
    /// This process's share of the clips.
    pub shard: Shard,
    /// A Depth Anything 3 teacher's processing resolution (its reference's 504 when
    /// omitted).
    pub process_res: Option<u32>,
}

impl Label {
    /// The command line.
    pub fn command_line(&self) -> String {
        let mut line = format!("spatialsv label --dataset {}", quote(&self.dataset));
        for t in &self.teachers {
            line.push_str(&format!(" --teacher {}", quote(t)));
        }
        if let Some(c) = &self.config {
            line.push_str(&format!(" --config {}", quote(c)));
        }
        if self.shard != Shard::ALL {
            line.push_str(&format!(
                " --shard {}/{}",
                self.shard.index, self.shard.count
            ));
        }
        if let Some(r) = self.process_res {
            line.push_str(&format!(" --process-res {r}"));
        }
        line
    }

    /// Labels and says the report.
    pub fn run(&self, env: &Env) -> Result<()> {
        let config: LabelConfig = match &self.config {
            Some(p) => spatialsv_store::load_toml(p)?,
            None => LabelConfig::default(),
        };
        let ds = env.open(&self.dataset)?;
        let teacher = load_teachers_at(&self.teachers, self.process_res)?;
        if let Some(about) = &teacher.about {
            env.say(&format!("teacher: {about}"))?;
        }
        let t = Instant::now();
        let progress = env.progress();
        let mut seen = (0, 0);
        let report = label(&ds, &teacher, &config, self.shard, |p| {
            position(progress, &mut seen, p.frames_done, p.frames_total, "frames");
            let rate = p.frames_done as f64 / t.elapsed().as_secs_f64().max(1e-9);
            progress.message(&format!("{rate:.1} frames/s"));
        });
        progress.finish();
        let r = report?;
        for line in r.lines(self.shard, t.elapsed().as_secs_f64()) {
            env.say(&line)?;
        }
        Ok(())
    }
}

/// Reports `done` of `total` to a [`Progress`] that counts increments: starts it again when
/// the total changes. `seen` is (done, total) as last reported.
pub fn position(
    progress: &dyn Progress,
    seen: &mut (usize, usize),
    done: usize,
    total: usize,
    unit: &'static str,
) {
    if total != seen.1 {
        progress.start(total as u64, unit);
        *seen = (0, total);
    }
    progress.advance(done.saturating_sub(seen.0) as u64);
    seen.0 = seen.0.max(done);
}

/// `spatialsv export`: 3D exports of what a model believes about one scene.
#[derive(Debug, Clone)]
pub struct Export {
    /// The run directory.
    pub checkpoint: PathBuf,
    /// The dataset.
    pub dataset: PathBuf,
    /// A labeled scene of the dataset.
    pub scene: String,
    /// Output directory.
    pub out: PathBuf,
}

impl Export {
    /// The command line.
    pub fn command_line(&self) -> String {
        format!(
            "spatialsv export --checkpoint {} --dataset {} --scene {} --out {}",
            quote(&self.checkpoint),
            quote(&self.dataset),
            quote(&self.scene),
            quote(&self.out)
        )
    }

    /// Exports and says what was written.
    pub fn run(&self, env: &Env) -> Result<()> {
        let ds = env.open(&self.dataset)?;
        let s =
            spatialsv_trainer::export::export_scene(&ds, &self.checkpoint, &self.scene, &self.out)?;
        env.say(&s.line(&self.scene, &self.out))
    }
}

/// `spatialsv qa`: spatial questions from a dataset's geometry.
#[derive(Debug, Clone)]
pub struct Qa {
    /// The dataset.
    pub dataset: PathBuf,
    /// What to generate.
    pub options: QaOptions,
}

impl Qa {
    /// The command line.
    pub fn command_line(&self) -> String {
        let o = &self.options;
        let mut s = format!(
            "spatialsv qa --dataset {} --per-clip {} --views {} --seed {}",
            quote(&self.dataset),
            o.per_clip,
            o.views,
            o.seed
        );
        if !o.families.is_empty() {
            let names: Vec<String> = o.families.iter().map(ToString::to_string).collect();
            s.push_str(&format!(" --families {}", names.join(",")));
        }
        s
    }

    /// Generates the questions and says the report.
    pub fn run(&self, env: &Env) -> Result<()> {
        let ds = env.open(&self.dataset)?;
        let r = generate(&ds, &self.options, env.progress())?;
        for line in r.lines(&ds.location()) {
            env.say(&line)?;
        }
        Ok(())
    }
}

/// Writes `value` as pretty JSON to `dir/name`, creating `dir`; returns the path.
pub fn write_json(dir: &Path, name: &str, value: &impl serde::Serialize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(LabError::output("creating the output directory", dir))?;
    let path = dir.join(name);
    let json = serde_json::to_string_pretty(value)
        .map_err(|e| LabError::Internal(format!("serialising {name}: {e}")))?;
    std::fs::write(&path, json).map_err(LabError::output("writing", &path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_what_a_user_would_type() {
        let t = Train {
            dataset: "out/my ds".into(),
            config: Some("c.toml".into()),
            out: "runs/t".into(),
            resume: true,
        };
        assert_eq!(
            t.command_line(),
            "spatialsv train --dataset 'out/my ds' --config c.toml --out runs/t --resume"
        );
        let i = Ingest::new(
            Source::Scans(ScanFormat::Scannet),
            "w/scans/train".into(),
            Path::new("ds"),
            Split::Train,
        );
        assert_eq!(
            i.command_line(),
            "spatialsv ingest scannet w/scans/train --dataset ds --split train"
        );
        let l = Label {
            dataset: "ds".into(),
            teachers: vec!["a".into(), "b".into()],
            config: None,
            shard: Shard { index: 1, count: 4 },
            process_res: None,
        };
        assert_eq!(
            l.command_line(),
            "spatialsv label --dataset ds --teacher a --teacher b --shard 1/4"
        );
        let s = Synth {
            out: "w".into(),
            options: SynthOptions {
                test_videos: 2,
                ..SynthOptions::default()
            },
        };
        assert!(
            s.command_line().ends_with("--test-videos 2"),
            "{}",
            s.command_line()
        );
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn positions_become_increments_and_a_new_total_restarts() {
        #[derive(Default)]
        struct Count(std::sync::Mutex<Vec<(char, u64)>>);
        impl Progress for Count {
            fn start(&self, total: u64, _: &'static str) {
                self.0.lock().unwrap().push(('s', total));
            }
            fn advance(&self, n: u64) {
                self.0.lock().unwrap().push(('a', n));
            }
        }
        let c = Count::default();
        let mut seen = (0, 0);
        for (done, total) in [(0, 10), (4, 10), (10, 10), (2, 5)] {
            position(&c, &mut seen, done, total, "frames");
        }
        assert_eq!(
            *c.0.lock().unwrap(),
            vec![('s', 10), ('a', 0), ('a', 4), ('a', 6), ('s', 5), ('a', 2)]
        );
    }
}
