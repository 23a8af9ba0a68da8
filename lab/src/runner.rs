//! One resumable step runner for every experiment: each finished step leaves a marker in
//! `OUT/.done/` (its name, spaces as underscores) and a rerun skips it; every step prints its
//! number, name and equivalent command line, and its wall time is recorded for the report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::LabError;

/// One step as it ran.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it did.
    pub name: String,
    /// The equivalent command line.
    pub command: String,
    /// Wall time.
    pub seconds: f64,
    /// Finished by an earlier run.
    pub skipped: bool,
}

/// The `.done` markers of an output folder.
#[derive(Debug, Clone)]
pub struct Markers {
    dir: PathBuf,
}

impl Markers {
    /// The markers of the experiment writing into `out`.
    pub fn new(out: &Path) -> Markers {
        Markers {
            dir: out.join(".done"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name.replace(' ', "_"))
    }

    /// Whether step `name` finished in an earlier run.
    pub fn done(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    /// Records that step `name` finished.
    pub fn mark(&self, name: &str) -> Result<(), LabError> {
        std::fs::create_dir_all(&self.dir).map_err(LabError::output("creating", &self.dir))?;
        let p = self.path(name);
        std::fs::write(&p, "").map_err(LabError::output("writing", &p))
    }
}

/// Runs the numbered steps of one experiment, printing through `say`.
pub struct Runner<'a, E> {
    what: &'static str,
    markers: Markers,
    steps: Vec<Step>,
    total: usize,
    say: &'a mut dyn FnMut(&str) -> Result<(), E>,
}

impl<E> std::fmt::Debug for Runner<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("what", &self.what)
            .field("steps", &self.steps)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl<'a, E: From<LabError>> Runner<'a, E> {
    /// A runner of `total` steps of `what` (`demo`) writing into `out`.
    pub fn new(
        what: &'static str,
        out: &Path,
        total: usize,
        say: &'a mut dyn FnMut(&str) -> Result<(), E>,
    ) -> Self {
        Runner {
            what,
            markers: Markers::new(out),
            steps: Vec::new(),
            total,
            say,
        }
    }

    fn announce(&mut self, name: &str, command: &str) -> Result<(), E> {
        let line = format!(
            "== {} step {}/{}: {name}",
            self.what,
            self.steps.len() + 1,
            self.total
        );
        (self.say)(&line)?;
        (self.say)(&format!("   $ {command}"))
    }

    /// Runs `f` as step `name` every time (its results feed the report); records its time.
    pub fn always<T>(
        &mut self,
        name: &str,
        command: String,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.announce(name, &command)?;
        let t = Instant::now();
        let value = f()?;
        self.steps.push(Step {
            name: name.to_string(),
            command,
            seconds: t.elapsed().as_secs_f64(),
            skipped: false,
        });
        Ok(value)
    }

    /// Runs `f` as step `name` unless its marker says it finished; records its time.
    pub fn step(
        &mut self,
        name: &str,
        command: String,
        f: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        self.announce(name, &command)?;
        let t = Instant::now();
        let skipped = self.markers.done(name);
        if skipped {
            (self.say)("   (done in an earlier run; skipped)")?;
        } else {
            f()?;
            self.markers.mark(name)?;
        }
        self.steps.push(Step {
            name: name.to_string(),
            command,
            seconds: t.elapsed().as_secs_f64(),
            skipped,
        });
        Ok(())
    }

    /// The steps run so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The steps, when the experiment is over.
    pub fn into_steps(self) -> Vec<Step> {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_skips_finished_steps_and_counts_from_the_known_total() {
        let tmp = tempfile::tempdir().unwrap();
        let mut lines: Vec<String> = Vec::new();
        let mut say = |l: &str| -> Result<(), LabError> {
            lines.push(l.to_string());
            Ok(())
        };
        let mut ran = 0;
        {
            let mut r = Runner::new("demo", tmp.path(), 3, &mut say);
            r.step("train teacher", "spatialsv train".into(), || {
                ran += 1;
                Ok(())
            })
            .unwrap();
            let v = r
                .always("score", "spatialsv eval".into(), || Ok(5))
                .unwrap();
            assert_eq!(v, 5);
            let err = r.step("label", "spatialsv label".into(), || {
                Err(LabError::User("no".into()))
            });
            assert!(err.is_err());
            assert_eq!(r.steps().len(), 2);
        }
        assert!(Markers::new(tmp.path()).done("train teacher"));
        assert!(tmp.path().join(".done/train_teacher").exists());
        assert!(!Markers::new(tmp.path()).done("label"));
        let mut r = Runner::new("demo", tmp.path(), 3, &mut say);
        r.step("train teacher", "spatialsv train".into(), || {
            ran += 1;
            Ok(())
        })
        .unwrap();
        let steps = r.into_steps();
        assert!(steps[0].skipped);
        assert_eq!(ran, 1);
        assert_eq!(lines[0], "== demo step 1/3: train teacher");
        assert_eq!(lines[1], "   $ spatialsv train");
        assert!(lines.contains(&"== demo step 3/3: label".to_string()));
        assert_eq!(
            lines.last().unwrap(),
            "   (done in an earlier run; skipped)"
        );
    }
}
