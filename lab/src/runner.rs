//! One resumable step runner for every experiment: each finished step leaves a marker in
//! `OUT/.done/` (its name, spaces as underscores) and a rerun skips it; every step prints its
//! number, name and equivalent command line, and its wall time is recorded for the report.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
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

/// What a step of [`Runner::parallel`] would have said and warned, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A line for standard output.
    Say(String),
    /// A warning.
    Warn(String),
}

/// A finished step of [`Runner::parallel`]: its output or error, and its wall time.
type Finished<E> = (Result<Vec<Output>, E>, f64);

/// One step of [`Runner::parallel`]: its name, its command line and its work, which returns
/// its output instead of saying it (steps running at the same time would interleave lines).
pub struct Job<'s, E> {
    /// What it does (its marker's name).
    pub name: String,
    /// The equivalent command line.
    pub command: String,
    /// The work.
    pub work: Box<dyn FnOnce() -> Result<Vec<Output>, E> + Send + 's>,
}

impl<E> std::fmt::Debug for Job<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

/// How [`Runner::parallel`] shares the machine: `workers` steps at a time, each with a rayon
/// pool of `threads`, and where buffered warnings go.
#[derive(Clone, Copy)]
pub struct Lanes<'w> {
    /// Steps at a time.
    pub workers: usize,
    /// Threads of each step's pool.
    pub threads: usize,
    /// Where the steps' warnings go when they are said.
    pub warn: &'w dyn Fn(&str),
}

impl std::fmt::Debug for Lanes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("workers", &self.workers)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl<'w> Lanes<'w> {
    /// The lanes for this machine: on a CPU of two cores or more, two steps at a time, the
    /// cores split between them (one training step of the tiny model keeps about 1.3 of two
    /// cores busy: docs/performance.md); one step with every core otherwise, and always on a
    /// GPU build (two models on one card compete for its memory).
    pub fn for_machine(warn: &'w dyn Fn(&str)) -> Lanes<'w> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = if spatialsv_trainer::BACKEND_NAME == "flex" && cores >= 2 {
            2
        } else {
            1
        };
        Lanes {
            workers,
            threads: (cores / workers).max(1),
            warn,
        }
    }
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
        self.announce_as(self.steps.len() + 1, name, command)
    }

    fn announce_as(&mut self, number: usize, name: &str, command: &str) -> Result<(), E> {
        let line = format!("== {} step {number}/{}: {name}", self.what, self.total);
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

    /// Runs `jobs` as the next steps, up to `lanes.workers` at a time, each on its own thread
    /// inside a rayon pool of `lanes.threads` threads (the CPU backend's kernels run in the
    /// current pool), skipping those whose markers say they finished. Every step is announced
    /// first, in order; each one's output is said once it and every step before it are done
    /// (so the lines come out in step order), with "running N at a time" noted; each step's
    /// wall time is its own. A step that finished is marked even when another failed; the
    /// first error in step order is returned.
    pub fn parallel(&mut self, jobs: Vec<Job<'_, E>>, lanes: Lanes) -> Result<(), E>
    where
        E: Send,
    {
        let first = self.steps.len() + 1;
        let mut pending = Vec::new();
        let mut skipped = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            self.announce_as(first + i, &job.name, &job.command)?;
            let done = self.markers.done(&job.name);
            skipped.push(done);
            self.steps.push(Step {
                name: job.name,
                command: job.command,
                seconds: 0.0,
                skipped: done,
            });
            if !done {
                pending.push((i, job.work));
            }
        }
        let workers = lanes.workers.clamp(1, pending.len().max(1));
        if pending.len() > 1 && workers > 1 {
            (self.say)(&format!(
                "   (steps {first} to {}: running {workers} at a time)",
                first + skipped.len() - 1
            ))?;
        }
        let queue = Mutex::new(pending.into_iter());
        let (tx, rx) = mpsc::channel::<(usize, Result<Vec<Output>, E>, f64)>();
        let mut results: Vec<Option<Finished<E>>> = skipped.iter().map(|_| None).collect();
        let mut first_error: Option<E> = None;
        std::thread::scope(|scope| -> Result<(), E> {
            let threads = lanes.threads.max(1);
            for _ in 0..workers {
                let (queue, tx) = (&queue, tx.clone());
                scope.spawn(move || {
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some((i, work)) = next else { break };
                        let t = Instant::now();
                        let result =
                            match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                                Ok(pool) => pool.install(work),
                                Err(_) => work(),
                            };
                        if tx.send((i, result, t.elapsed().as_secs_f64())).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Say each step's output in order, as soon as every step before it is done.
            let mut next = 0;
            for (i, result, seconds) in rx {
                results[i] = Some((result, seconds));
                self.say_ready(
                    first,
                    &skipped,
                    &mut results,
                    &mut next,
                    &mut first_error,
                    lanes,
                )?;
            }
            self.say_ready(
                first,
                &skipped,
                &mut results,
                &mut next,
                &mut first_error,
                lanes,
            )
        })?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Says the output of the steps from `next` on whose step and predecessors are done.
    fn say_ready(
        &mut self,
        first: usize,
        skipped: &[bool],
        results: &mut [Option<Finished<E>>],
        next: &mut usize,
        first_error: &mut Option<E>,
        lanes: Lanes,
    ) -> Result<(), E> {
        while *next < skipped.len() {
            let at = first - 1 + *next;
            if skipped[*next] {
                let line = format!(
                    "   (step {}, {}: done in an earlier run; skipped)",
                    first + *next,
                    self.steps[at].name
                );
                (self.say)(&line)?;
            } else {
                let Some((result, seconds)) = results[*next].take() else {
                    return Ok(());
                };
                self.steps[at].seconds = seconds;
                match result {
                    Ok(lines) => {
                        for line in lines {
                            match line {
                                Output::Say(l) => (self.say)(&l)?,
                                Output::Warn(w) => (lanes.warn)(&w),
                            }
                        }
                        self.markers.mark(&self.steps[at].name)?;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            *next += 1;
        }
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

    /// Steps run two at a time say their output in step order (whatever order they finish
    /// in), each in a pool of the given size; finished ones are marked even when one fails,
    /// and a rerun skips them.
    #[test]
    fn parallel_steps_say_in_order_mark_what_finished_and_report_the_first_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut lines: Vec<String> = Vec::new();
        let warned = std::sync::Mutex::new(Vec::new());
        let warn = |w: &str| warned.lock().unwrap().push(w.to_string());
        let lanes = Lanes {
            workers: 2,
            threads: 1,
            warn: &warn,
        };
        let job = |name: &str, wait_ms: u64, fail: bool| Job {
            name: name.to_string(),
            command: format!("spatialsv {name}"),
            work: Box::new(move || {
                std::thread::sleep(std::time::Duration::from_millis(wait_ms));
                assert_eq!(rayon::current_num_threads(), 1);
                if fail {
                    return Err(LabError::User("no".into()));
                }
                Ok(vec![
                    Output::Say(format!("said {wait_ms}")),
                    Output::Warn(format!("warned {wait_ms}")),
                ])
            }),
        };
        {
            let mut say = |l: &str| -> Result<(), LabError> {
                lines.push(l.to_string());
                Ok(())
            };
            let mut r = Runner::new("demo", tmp.path(), 4, &mut say);
            // The first step finishes last; the third fails.
            let jobs = vec![
                job("a", 150, false),
                job("b", 10, false),
                job("c", 10, true),
                job("d", 10, false),
            ];
            let err = r.parallel(jobs, lanes).unwrap_err();
            assert!(err.to_string().contains("no"), "{err}");
            assert_eq!(r.steps().len(), 4);
            assert!(r.steps()[0].seconds >= 0.15, "{:?}", r.steps()[0]);
        }
        let said: Vec<&str> = lines.iter().map(String::as_str).collect();
        let pos = |l: &str| said.iter().position(|s| *s == l).unwrap();
        assert!(pos("== demo step 4/4: d") < pos("said 150"), "{said:?}");
        assert!(pos("said 150") < pos("said 10"), "{said:?}");
        assert_eq!(said.iter().filter(|s| **s == "said 10").count(), 2);
        assert!(said.contains(&"   (steps 1 to 4: running 2 at a time)"));
        assert_eq!(warned.lock().unwrap()[0], "warned 150");
        let m = Markers::new(tmp.path());
        assert!(m.done("a") && m.done("b") && !m.done("c") && m.done("d"));

        lines.clear();
        let mut say = |l: &str| -> Result<(), LabError> {
            lines.push(l.to_string());
            Ok(())
        };
        let mut r = Runner::new("demo", tmp.path(), 4, &mut say);
        let jobs = vec![
            job("a", 0, true),
            job("b", 0, true),
            job("c", 0, false),
            job("d", 0, true),
        ];
        r.parallel(jobs, lanes).unwrap();
        assert!(r.steps()[0].skipped && !r.steps()[2].skipped);
        assert!(lines.contains(&"   (step 1, a: done in an earlier run; skipped)".to_string()));
        assert!(lines.contains(&"said 0".to_string()), "{lines:?}");
    }
}
