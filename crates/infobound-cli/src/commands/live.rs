//! `infobound train --tensorboard`: the run's `train_log.jsonl` mirrored into a TensorBoard event
//! file while it trains.
//!
//! A thread re-reads the log every [`POLL`] and appends each new row as scalars `train/<key>` at
//! its step (the tags of `infobound export tensorboard`), flushing after every row, to
//! `RUN/tensorboard/live/events.out.tfevents.<time>.<host>.infobound-live`. The file is written
//! in place, not renamed into place as the export's: an append-only file that TensorBoard reads
//! while it grows cannot be atomic, so a killed run leaves the rows mirrored so far (every record
//! is written whole; a torn last one is skipped by TensorBoard's reader). Rows are taken in
//! step order above the step the session starts from (a resumed run's checkpoint step), so the
//! rewrite of the log on resume and rows read twice are never written twice. The evaluation
//! metrics, configuration and images come with `infobound export tensorboard RUN` afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use infobound_train::RunDir;

use super::export::{host_name, parse_log_row, scalar_values};
use crate::error::CliError;
use crate::tensorboard::{EventWriter, now_secs};

/// How often the log is re-read (our choice: a log row comes every `log_every` steps, seconds
/// apart on the CPU; a 1 MB log re-read costs about a millisecond).
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// A running mirror of a run's log into a live event file; stopped by [`Self::finish`] or when
/// dropped (after a last read of the log either way).
pub(crate) struct LiveTensorboard {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), CliError>>>,
}

impl LiveTensorboard {
    /// Starts mirroring the rows of `run`'s log with a step above `from_step` into a new event
    /// file in `RUN/tensorboard/live/`.
    ///
    /// # Errors
    /// [`CliError::Io`] if the folder or the file cannot be created.
    pub(crate) fn start(run: &RunDir, from_step: usize) -> Result<Self, CliError> {
        let folder = run.root().join("tensorboard").join("live");
        std::fs::create_dir_all(&folder).map_err(|source| CliError::Io {
            path: folder.clone(),
            source,
        })?;
        let path = folder.join(format!(
            "events.out.tfevents.{:010}.{}.infobound-live",
            now_secs() as u64,
            host_name()
        ));
        let mut writer = EventWriter::create_live(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let log = run.train_log();
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut last = i64::try_from(from_step).unwrap_or(i64::MAX);
            loop {
                // Read once more after the stop signal: the rows of the last steps.
                let stopping = stopped.load(Ordering::Acquire);
                mirror(&log, &mut last, &mut writer)?;
                if stopping {
                    break;
                }
                std::thread::sleep(POLL);
            }
            writer.finish().map(|_| ())
        });
        Ok(Self {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// Starts mirroring for a training session of `run`: from step 0, or for a resume from the
    /// step of the newest valid checkpoint (the one the resume continues from).
    ///
    /// # Errors
    /// As [`Self::start`]; [`CliError::Train`] if the checkpoint's state cannot be read.
    pub(crate) fn start_session(run: &RunDir, resume: bool) -> Result<Self, CliError> {
        let checkpoint = if resume {
            infobound_train::latest_checkpoint(&run.checkpoints())?
        } else {
            None
        };
        let from_step = match checkpoint {
            Some(checkpoint) => infobound_train::run::load_state(&checkpoint)?.step,
            None => 0,
        };
        let live = Self::start(run, from_step)?;
        eprintln!(
            "infobound: TensorBoard scalars as they are logged: {}",
            live.path().display()
        );
        Ok(live)
    }

    /// The event file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stops after a last read of the log and closes the file.
    ///
    /// # Errors
    /// [`CliError::Io`] if the log could not be read or the file written.
    pub(crate) fn finish(mut self) -> Result<PathBuf, CliError> {
        self.stop_thread()?;
        Ok(self.path.clone())
    }

    fn stop_thread(&mut self) -> Result<(), CliError> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(CliError::Usage(format!(
                "{}: the TensorBoard mirror thread panicked",
                self.path.display()
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for LiveTensorboard {
    fn drop(&mut self) {
        // Reached when training failed: the run's error is the one reported, so the mirror's
        // own (if any) only goes to stderr.
        if let Err(e) = self.stop_thread() {
            eprintln!("warning: {e}");
        }
    }
}

/// Appends the complete lines of `log` whose row has a step above `last`, in order, advancing
/// `last`; a missing log (not yet opened) and lines that are not rows are passed over.
fn mirror(log: &Path, last: &mut i64, writer: &mut EventWriter) -> Result<(), CliError> {
    let text = match std::fs::read_to_string(log) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CliError::Io {
                path: log.to_path_buf(),
                source,
            });
        }
    };
    // A line without its newline is still being written.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut out_of_range = 0;
    for row in complete.lines().filter_map(parse_log_row) {
        if row.step <= *last {
            continue;
        }
        writer.add_scalars(
            row.step,
            &scalar_values("train/", &row.values, &mut out_of_range),
        )?;
        writer.flush()?;
        *last = row.step;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use super::*;
    use crate::tensorboard::{EventKind, ValueKind, read_events};

    /// (step, tag, value) of every scalar in the event file `path`.
    fn scalars(path: &Path) -> Vec<(i64, String, f32)> {
        let bytes = std::fs::read(path).expect("event file");
        let mut out = Vec::new();
        for event in read_events(&bytes).expect("whole records") {
            if let Some(EventKind::Summary(summary)) = event.what {
                for value in summary.value {
                    if let Some(ValueKind::SimpleValue(v)) = value.value {
                        out.push((event.step, value.tag, v));
                    }
                }
            }
        }
        out
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("log");
        file.write_all(text.as_bytes()).expect("append");
    }

    /// Waits until the event file holds `n` scalars (at most 20 s).
    fn wait_for(path: &Path, n: usize) -> Vec<(i64, String, f32)> {
        let started = Instant::now();
        loop {
            let found = scalars(path);
            if found.len() >= n || started.elapsed() > Duration::from_secs(20) {
                return found;
            }
            std::thread::sleep(POLL / 2);
        }
    }

    #[test]
    fn rows_appear_as_they_are_logged_and_never_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path());
        // A resumed run: rows up to its checkpoint step 2 belong to an earlier session.
        append(
            &run.train_log(),
            "{\"step\": 1, \"loss\": 9.0}\n{\"step\": 2, \"loss\": 8.0}\n{\"step\": 3, \"loss\": 7.5}\n",
        );
        let live = LiveTensorboard::start(&run, 2).expect("starts");
        let path = live.path().to_path_buf();
        let first = wait_for(&path, 1);
        assert_eq!(first, vec![(3, "train/loss".to_string(), 7.5)]);

        // The resume rewrite (log cut back to step 2) and the re-logged step 3: nothing new.
        std::fs::write(
            run.train_log(),
            "{\"step\": 1, \"loss\": 9.0}\n{\"step\": 2, \"loss\": 8.0}\n{\"step\": 3, \"loss\": 7.5}\n",
        )
        .expect("rewrite");
        // A new row, a row with a string and a null, and a half-written line.
        append(
            &run.train_log(),
            "{\"step\": 4, \"loss\": 7.0, \"kl\": 1.5}\n{\"step\": 5, \"note\": \"x\", \"gone\": null, \"loss\": 6.5}\n{\"step\": 6, \"lo",
        );
        let second = wait_for(&path, 4);
        assert_eq!(
            second,
            vec![
                (3, "train/loss".to_string(), 7.5),
                (4, "train/kl".to_string(), 1.5),
                (4, "train/loss".to_string(), 7.0),
                (5, "train/loss".to_string(), 6.5),
            ]
        );
        // The rest of the line arrives before the stop; the last read takes it.
        append(&run.train_log(), "ss\": 6.0}\n");
        assert_eq!(live.finish().expect("finishes"), path);
        let last = scalars(&path);
        assert_eq!(last.len(), 5);
        assert_eq!(last[4], (6, "train/loss".to_string(), 6.0));
    }
}
