//! The `infobound` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod error;
mod tensorboard;

use error::CliError;

// The allocator matters for Burn's CPU backends: measured on the conv-VAE step, mimalloc cuts
// page-fault and zero-fill time from ~19 % to ~3 % of the profile (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Information-theoretic representation learning (α-TCVAE, MVEB) on Burn.
#[derive(Debug, Parser)]
#[command(name = "infobound", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the compiled-in backends and whether each initialises on this machine.
    Devices,
    /// List, describe and render the ground-truth datasets.
    Datasets(commands::datasets::DatasetsArgs),
    /// Score codes or features produced anywhere (.npy files).
    Metrics(commands::metrics::MetricsArgs),
    /// Train a model from a preset or config file (then evaluate and write the report).
    Train(commands::runs::TrainArgs),
    /// Re-evaluate a run folder from its newest checkpoint.
    Eval(commands::runs::EvalArgs),
    /// Write a latent traversal grid of a run.
    Traverse(commands::runs::TraverseArgs),
    /// Rewrite the report (report.md, loss.svg) of a run.
    Report(commands::runs::ReportArgs),
    /// Print tables of metrics and configuration across runs, per run or per group of runs, with
    /// Welch's t-test against a baseline group.
    ///
    /// One table per model family (runs of the VAE and the self-supervised family are listed
    /// apart), one row per run in the order given; a metric a run's metrics.json lacks is shown as
    /// "–" (an empty field in CSV, null in JSON). A run folder without metrics.json yet (a run
    /// still training) is skipped with a warning on stderr; a folder that is not a run folder is an
    /// error.
    ///
    /// Configuration columns, from each run's resolved config.toml: seed, steps, batch_size,
    /// optimizer.learning_rate (VAE) or optimizer.base_lr (self-supervised),
    /// augmentation.num_local_views (self-supervised), and every
    /// [objective] value as objective.<key> (nested tables dotted: objective.capacity_schedule.kind).
    /// CSV and JSON get all of them (in CSV after the metric columns). Text and Markdown get only
    /// those whose value differs between two rows that both have the key (with grouping: groups
    /// whose runs agree on it), without objective.kind (the method column) and the --group-by keys.
    ///
    /// --grouped: one row per group, where a run's group is its folder name without a trailing
    /// `-seed<digits>` (runs/study/alpha0-seed3 → alpha0), groups in the order of first
    /// appearance; cells are mean ± sample standard deviation (n − 1) over the group's runs that
    /// have the metric, n counts the group's runs, a single value is shown alone.
    ///
    /// --group-by KEY[,KEY...]: as --grouped, but a run's group is its values of these
    /// configuration columns, labelled `KEY=VALUE,KEY=VALUE` in the order given (strings bare,
    /// numbers as in the JSON output, e.g. 0.5, 3.0, 1e-6; empty where a run lacks the key), e.g.
    /// --group-by objective.kind,objective.alpha gives objective.kind=alpha_tcvae,objective.alpha=0.5.
    /// --baseline takes such a label; its numbers compare by value (objective.alpha=0 names
    /// objective.alpha=0.0).
    ///
    /// --baseline GROUP: after each grouped table that contains GROUP (a folder group, or a
    /// --group-by label), a second table "Welch's t-test against GROUP" with, per other group and
    /// metric, the difference of means and the two-sided p-value, e.g. `+0.031 (p=0.012)`; "–"
    /// where a side has fewer than 2 values or both are constant.
    ///
    /// CSV (RFC 4180, numbers at full precision, tables separated by an empty line): per run
    /// `run,<method>,<metric>...,<config>...`; grouped `group,<method>,n,<metric> mean,<metric>
    /// sd,...,<config>...` (a group's config value where its runs agree, else empty); the t-test
    /// table `group,baseline,column,diff,t,dof,p` with one line per group and metric (empty fields
    /// where the test is undefined).
    ///
    /// JSON: one document, {"version", "grouping", "group_by", "baseline", "skipped", "metrics",
    /// "config", "rows", "groups", "tests"}; pandas.DataFrame(doc["rows"]) has one flat row per run
    /// (run, family, method, group, every config column, every metric column, null where
    /// missing), doc["groups"] one per group (n, config, "<metric> mean", "<metric> sd", "<metric>
    /// n"), doc["tests"] one per group and metric (diff, t, df, p).
    Compare(commands::runs::CompareArgs),
    /// Re-run the kNN and linear probes of a self-supervised run from its newest checkpoint.
    Probe(commands::runs::ProbeArgs),
    /// Export runs to other tools' formats: `export tensorboard RUN... [--out DIR]` writes
    /// TensorBoard event files (scalars, eval metrics, config as HParams, PNG grids);
    /// `export weights RUN --out FILE.safetensors` the network with PyTorch's key names.
    Export(commands::export::ExportArgs),
    /// Import a model trained elsewhere: `import weights FILE --preset NAME --out RUN` makes a
    /// run folder from a PyTorch state dict (.safetensors, .pt) that `eval`, `traverse` and
    /// `probe` score.
    Import(commands::weights::ImportArgs),
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Devices => commands::devices::run(),
        Command::Datasets(args) => commands::datasets::run(args),
        Command::Metrics(args) => commands::metrics::run(args),
        Command::Train(args) => commands::runs::train(args),
        Command::Eval(args) => commands::runs::eval(args),
        Command::Traverse(args) => commands::runs::traverse(args),
        Command::Report(args) => commands::runs::report(args),
        Command::Compare(args) => commands::runs::compare(args),
        Command::Probe(args) => commands::runs::probe(args),
        Command::Export(args) => commands::export::run(args),
        Command::Import(args) => commands::weights::import(args),
    }
}

fn main() -> ExitCode {
    infobound_backend::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
