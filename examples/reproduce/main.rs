//! Reproduces the MNIST experiments of Szegedy et al. (2014) on the bundled data (needs the
//! `paper` feature).
//!
//! ```text
//! cargo run --release --features paper --example reproduce -- <table1|transfer|cross|advtrain|advstudy|scale|all>
//!     [--quick] [--samples N] [--out DIR] [--seed S] [--threads T] [--no-cache] [--docs]
//!     [--rows A,B] [--spec RECIPE]
//! ```
//!
//! - `table1`: Table 1 (errors, minimum distortion on training images) and Figure-5 grids.
//! - `transfer`: Table 1 and Table 2 (cross-model, with Gaussian-noise rows).
//! - `cross`: Tables 3–4 (models on P1/P2, test images, magnified examples).
//! - `advtrain`: the headline adversarial-training comparison (`ADV_HEADLINE`: the plain
//!   FC100-100-10 and the best pool recipe at the same budget; `--samples`: test images
//!   attacked on both models).
//! - `advstudy`: the adversarial-training study rows (`ADV_STUDY`; `--rows a,b` runs some,
//!   `--rows none` only tabulates rows measured earlier, `--spec RECIPE` runs one named row
//!   with another recipe string); each row's result is kept in `<out>/advstudy/<row>.tsv`.
//! - `scale`: FC10(λ) and FC100-100-10 under the input conventions (distortion scale).
//! - `all`: everything but `advstudy`.
//! - `docs`: copies the tables found in `<out>` (from earlier runs) into
//!   `docs/reproduction.md` (same as `--docs`, without recomputing anything).
//!
//! Writes `<out>/table1.md`, `table2.md`, `table3.md`, `table4.md`, `advtrain.md`,
//! `advstudy.md`, `scale.md` and
//! `fig5_<model>.png` (default out: `reproduction/` under the examples' output root —
//! `$CARGO_TARGET_DIR` when set, else `./target` — quick runs `reproduction/quick/`). Trained
//! weights are cached in `intriguing-cache/` under the same root. MNIST is read from
//! `INTRIGUING_MNIST_DIR` when set, else the bundled copy. `--docs` also writes the tables into `docs/reproduction.md`
//! between its `<!-- name:begin -->` / `<!-- name:end -->` markers (`name-quick` for
//! `--quick` runs), so the document's tables are produced here, never typed by hand.

#[path = "../common/mod.rs"]
mod common;

use intriguing::experiments::{
    ADV_HEADLINE, ADV_STUDY, AdvStudyRow, AdversarialSet, Event, ExperimentConfig, ExperimentData,
    NamedModel, PAPER_TABLE4_NOISE_RANGE, TrainedModel, advstudy_markdown, advtrain_eval,
    advtrain_markdown, advtrain_row, cross_training_models, gaussian_noise_set, magnify_set,
    scale_cases, scale_markdown, scale_study, table1, table1_markdown, table1_models,
    table1_sample, table3, train_or_load, transfer_markdown, transfer_markdown_with_paper,
    transfer_table, transfer_table_on_correct, write_figure_png,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    command: String,
    quick: bool,
    samples: Option<usize>,
    out: PathBuf,
    seed: u64,
    threads: usize,
    cache: bool,
    docs: bool,
    rows: Option<String>,
    spec: Option<String>,
}

/// What to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Command {
    /// Table 1 (errors, minimum distortion on training images) and the Figure-5 grids
    Table1,
    /// Table 1 and Table 2 (cross-model generalization, with Gaussian-noise rows)
    Transfer,
    /// Tables 3-4 (models trained on disjoint halves P1 / P2)
    Cross,
    /// Adversarial training of FC100-100-10 beside the plain model (the headline comparison)
    Advtrain,
    /// The adversarial-training study rows (`--rows a,b` runs some, `--rows none` only
    /// tabulates rows measured earlier, `--spec RECIPE` runs one named row with another recipe)
    Advstudy,
    /// The distortion-scale study under input conventions
    Scale,
    /// Everything above
    All,
    /// Copy the tables found in <out> into docs/reproduction.md (no computing)
    Docs,
}

/// Reproduce the MNIST experiments of Szegedy et al. (2014).
#[derive(clap::Parser, Debug)]
#[command(name = "reproduce")]
struct Cli {
    /// The experiment to run.
    #[arg(value_enum)]
    command: Command,
    /// Smaller models, data and samples (minutes instead of tens of minutes).
    #[arg(long)]
    quick: bool,
    /// Images attacked per model (default: the mode's).
    #[arg(long, value_parser = common::at_least_one)]
    samples: Option<usize>,
    /// Output directory (default: reproduction/ under the output root, quick runs
    /// reproduction/quick/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of every model, sample and attack.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads for the attacks (default: the machine's available parallelism).
    #[arg(long, value_parser = common::at_least_one)]
    threads: Option<usize>,
    /// Train every model, ignoring cached weights.
    #[arg(long)]
    no_cache: bool,
    /// Also write the tables into docs/reproduction.md.
    #[arg(long)]
    docs: bool,
    /// Study rows to run (comma-separated names, or `none`).
    #[arg(long)]
    rows: Option<String>,
    /// A recipe string replacing the named row's recipe.
    #[arg(long)]
    spec: Option<String>,
}

fn parse_args() -> Args {
    let cli = <Cli as clap::Parser>::parse();
    let command = match cli.command {
        Command::Table1 => "table1",
        Command::Transfer => "transfer",
        Command::Cross => "cross",
        Command::Advtrain => "advtrain",
        Command::Advstudy => "advstudy",
        Command::Scale => "scale",
        Command::All => "all",
        Command::Docs => "docs",
    };
    let out = cli.out.unwrap_or_else(|| {
        // Quick and full runs do not overwrite each other's tables and figures.
        let base = common::output_dir("reproduction");
        if cli.quick { base.join("quick") } else { base }
    });
    Args {
        command: command.to_string(),
        quick: cli.quick,
        samples: cli.samples,
        out,
        seed: cli.seed,
        threads: cli
            .threads
            .unwrap_or_else(intriguing::attack::default_threads),
        cache: !cli.no_cache,
        docs: cli.docs,
        rows: cli.rows,
        spec: cli.spec,
    }
}

/// Prints progress; attack progress at most every 5 seconds per batch (and at its end).
fn progress(e: &Event) {
    use std::sync::Mutex;
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    if let Event::Attack { done, total, .. } = e {
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed().as_secs_f64() >= 5.0);
        if !(due || done == total) {
            return;
        }
        *last = if done == total {
            None
        } else {
            Some(Instant::now())
        };
    }
    eprintln!("{e}");
}

/// Writes `<out>/<name>.md` (with a provenance line) and, with `--docs`, the markers `name`
/// in docs/reproduction.md.
fn emit(args: &Args, name: &str, title: &str, body: &str, secs: f64) -> intriguing::Result<()> {
    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    let provenance = format!(
        "_Produced by `cargo run --release --features paper --example reproduce -- {}` ({} mode, seed {}, {} threads; this step took {:.0} s)._\n\n",
        cmdline.join(" "),
        if args.quick { "quick" } else { "full" },
        args.seed,
        args.threads,
        secs
    );
    let text = format!("{provenance}{body}");
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join(format!("{name}.md"));
    std::fs::write(&path, format!("# {title}\n\n{text}"))?;
    eprintln!("wrote {}", path.display());
    if args.docs {
        let doc_path = docs_path();
        let doc = std::fs::read_to_string(&doc_path)?;
        // Quick and full runs have their own markers: `table1-quick` / `table1`.
        let key = if args.quick {
            format!("{name}-quick")
        } else {
            name.to_string()
        };
        let doc = markers(&doc, &key, &text)?;
        std::fs::write(&doc_path, doc)?;
        eprintln!("updated {} ({key})", doc_path.display());
    }
    Ok(())
}

/// Copies `<out>/<name>.md` into the markers of docs/reproduction.md (`name-quick` when the
/// table came from a quick run).
fn docs_from_out(args: &Args) -> intriguing::Result<()> {
    let doc_path = docs_path();
    let mut doc = std::fs::read_to_string(&doc_path)?;
    for name in [
        "table1", "table2", "table3", "table4", "advtrain", "advstudy", "scale",
    ] {
        let path = args.out.join(format!("{name}.md"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // Drop the "# title" line written by `emit`.
        let body = text.split_once("\n\n").map_or(text.as_str(), |(_, b)| b);
        let key = if body.contains("(quick mode,") {
            format!("{name}-quick")
        } else {
            name.to_string()
        };
        doc = markers(&doc, &key, body)?;
        eprintln!("{} -> {} ({key})", path.display(), doc_path.display());
    }
    std::fs::write(&doc_path, doc)?;
    Ok(())
}

/// The repository's `docs/reproduction.md` (this example runs from a clone).
fn docs_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reproduction.md")
}

fn figure_name(model: &str) -> String {
    model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn train_all(
    specs: &[intriguing::experiments::ModelSpec],
    data: &ExperimentData,
    cfg: &ExperimentConfig,
) -> intriguing::Result<Vec<TrainedModel>> {
    specs
        .iter()
        .map(|s| {
            let m = train_or_load(s, data, cfg, &mut progress)?;
            eprintln!(
                "  [{}] train error {:.2}%, test error {:.2}%{}",
                s.name,
                100.0 * m.train_error,
                100.0 * m.test_error,
                if m.from_cache {
                    String::from(" (cached)")
                } else {
                    format!(" ({:.0} s)", m.train_seconds)
                }
            );
            Ok(m)
        })
        .collect()
}

fn named(models: &[TrainedModel]) -> Vec<NamedModel<'_>> {
    models
        .iter()
        .map(|m| NamedModel {
            name: &m.spec.name,
            model: &m.model,
        })
        .collect()
}

fn run_table1_and_2(
    args: &Args,
    data: &ExperimentData,
    cfg: &ExperimentConfig,
    with_table2: bool,
) -> intriguing::Result<()> {
    let t0 = Instant::now();
    progress(&Event::Stage("Table 1: models".into()));
    let models = train_all(&table1_models(), data, cfg)?;
    let (rows, sets) = table1(&models, data, cfg, &mut progress)?;
    let secs = t0.elapsed().as_secs_f64();
    emit(
        args,
        "table1",
        "Table 1: errors and minimum distortion",
        &table1_markdown(&rows, true),
        secs,
    )?;
    for s in &sets {
        let p = args
            .out
            .join(format!("fig5_{}.png", figure_name(&s.source)));
        let Some(m) = models.iter().find(|m| m.spec.name == s.source) else {
            eprintln!("no figure for {}: no model of that name", s.source);
            continue;
        };
        match write_figure_png(&p, s, &m.model, 24, 3) {
            Ok(k) => eprintln!("wrote {} (distortion magnified x{k})", p.display()),
            Err(e) => eprintln!("no figure for {}: {e}", s.source),
        }
    }
    if with_table2 {
        let t1 = Instant::now();
        // Gaussian noise on the same sampled training images (all of them).
        let sample = table1_sample(data, cfg)?;
        let (x, y) = intriguing::data::subset(
            data.mnist.train_images.view(),
            &data.mnist.train_labels,
            &sample,
        )?;
        let mut rows_sets: Vec<AdversarialSet> = sets.clone();
        for (k, sd) in [0.1, 0.3].into_iter().enumerate() {
            let mut g = gaussian_noise_set(x.view(), &y, sd, cfg.seed ^ (0x6a05 + k as u64))?;
            g.indices = sample.clone();
            rows_sets.push(g);
        }
        let nm = named(&models);
        let mut t = transfer_table(&rows_sets, &nm)?;
        // The noise rows again, counting only the images each model classifies correctly
        // (the paper's apparent measure), beside the all-images rows above.
        let on_correct = transfer_table_on_correct(&rows_sets[sets.len()..], &nm)?;
        t.sources.extend(on_correct.sources);
        t.rates.extend(on_correct.rates);
        t.counts.extend(on_correct.counts);
        t.mean_rms.extend(on_correct.mean_rms);
        emit(
            args,
            "table2",
            "Table 2: cross-model generalization",
            &transfer_markdown_with_paper(&t, 2),
            t1.elapsed().as_secs_f64(),
        )?;
    }
    Ok(())
}

fn run_cross(args: &Args, data: &ExperimentData, cfg: &ExperimentConfig) -> intriguing::Result<()> {
    let t0 = Instant::now();
    progress(&Event::Stage("Tables 3-4: models on P1 / P2".into()));
    let models = train_all(&cross_training_models(), data, cfg)?;
    let (rows, sets) = table3(&models, data, cfg, &mut progress)?;
    emit(
        args,
        "table3",
        "Table 3: models of the cross-training-set experiment (distortion on test images)",
        &table1_markdown(&rows, false),
        t0.elapsed().as_secs_f64(),
    )?;
    let t1 = Instant::now();
    let nm = named(&models);
    let upper = transfer_table(&sets, &nm)?;
    let magnified: Vec<AdversarialSet> = sets
        .iter()
        .map(|s| magnify_set(s, 0.1))
        .collect::<intriguing::Result<_>>()?;
    let lower = transfer_table(&magnified, &nm)?;
    // Gaussian noise σ = 0.1 on the attacked test images of the first model, counting only
    // the images each model classifies correctly (the paper's Table 4 noise row).
    let noise = match sets.first() {
        Some(s0) => {
            let g = gaussian_noise_set(s0.originals.view(), &s0.labels, 0.1, cfg.seed ^ 0x6a07)?;
            transfer_table_on_correct(&[g], &nm)?
        }
        None => transfer_table_on_correct(&[], &nm)?,
    };
    let body = format!(
        "Adversarial examples (minimum distortion) of test images:\n\n{}\n\
         Magnified examples `x + 0.1·(x' − x)/rms(x' − x)` (clipped to [0, 1]):\n\n{}\n\
         Gaussian noise σ = 0.1 on the test images of the first row (each model: only the images it classifies correctly; the paper: {}–{}%†):\n\n{}",
        transfer_markdown_with_paper(&upper, 4),
        transfer_markdown_with_paper(&lower, 4),
        PAPER_TABLE4_NOISE_RANGE.0,
        PAPER_TABLE4_NOISE_RANGE.1,
        transfer_markdown(&noise)
    );
    emit(
        args,
        "table4",
        "Table 4: cross-training-set generalization",
        &body,
        t1.elapsed().as_secs_f64(),
    )?;
    Ok(())
}

/// Runs the study rows `names` (each result kept in `<out>/advstudy/<name>.tsv`, so rows
/// measured by separate runs are tabulated together), then writes the study table from
/// every registry row found there.
fn run_advstudy(args: &Args, data: &ExperimentData, names: &[String]) -> intriguing::Result<()> {
    let t0 = Instant::now();
    let dir = args.out.join("advstudy");
    std::fs::create_dir_all(&dir)?;
    for name in names {
        let spec = match (&args.spec, ADV_STUDY.iter().find(|r| r.0 == name.as_str())) {
            (Some(spec), _) => spec.clone(),
            (None, Some(r)) => r.1.to_string(),
            (None, None) => {
                return Err(intriguing::Error::InvalidConfig(format!(
                    "unknown study row {name:?} (rows: {})",
                    ADV_STUDY.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                )));
            }
        };
        let (row, _) = advtrain_row(name, &spec, data, args.threads, &mut progress)?;
        eprintln!(
            "  [{name}] train error {:.2}%, test error {:.2}% ({:.0} s, {:.0} s attacking)",
            100.0 * row.train_error,
            100.0 * row.test_error,
            row.stats.total_seconds,
            row.stats.attack_seconds
        );
        std::fs::write(dir.join(format!("{name}.tsv")), row.to_line() + "\n")?;
    }
    let mut rows = Vec::new();
    for (name, _, _) in ADV_STUDY {
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.tsv"))) {
            rows.push(AdvStudyRow::from_line(&text)?);
        }
    }
    emit(
        args,
        "advstudy",
        "Adversarial-training study",
        &advstudy_markdown(&rows, args.quick),
        t0.elapsed().as_secs_f64(),
    )
}

/// The distortion-scale study: FC10(λ) and FC100-100-10 trained and attacked under every
/// input convention.
fn run_scale(args: &Args, data: &ExperimentData, cfg: &ExperimentConfig) -> intriguing::Result<()> {
    let t0 = Instant::now();
    progress(&Event::Stage("distortion-scale study".into()));
    let attack_samples = if args.quick { 10 } else { 100 };
    let rows = scale_study(&scale_cases(true), data, cfg, attack_samples, &mut progress)?;
    emit(
        args,
        "scale",
        "Distortion scale under input conventions",
        &scale_markdown(&rows),
        t0.elapsed().as_secs_f64(),
    )
}

/// The headline comparison: the plain FC100-100-10 and the adversarially trained one with
/// the chosen recipe, same budget, both attacked on test images.
fn run_advtrain(
    args: &Args,
    data: &ExperimentData,
    cfg: &ExperimentConfig,
) -> intriguing::Result<()> {
    let t0 = Instant::now();
    progress(&Event::Stage("adversarial training".into()));
    let samples = args.samples.unwrap_or(if args.quick { 10 } else { 200 });
    let mut out = Vec::new();
    for name in ADV_HEADLINE {
        let spec = ADV_STUDY
            .iter()
            .find(|r| r.0 == name)
            .expect("headline rows are in the study")
            .1;
        let (row, model) = advtrain_row(name, spec, data, cfg.threads, &mut progress)?;
        let eval = advtrain_eval(&model, data, cfg, samples, &mut progress)?;
        out.push((row, eval));
    }
    emit(
        args,
        "advtrain",
        "Adversarial training",
        &advtrain_markdown(&out),
        t0.elapsed().as_secs_f64(),
    )
}

fn main() -> std::process::ExitCode {
    let args = parse_args();
    common::exit_status(run(args))
}

fn run(args: Args) -> intriguing::Result<()> {
    let mut cfg = if args.quick {
        ExperimentConfig::quick()
    } else {
        ExperimentConfig::full()
    };
    cfg.seed = args.seed;
    cfg.threads = args.threads;
    if let Some(n) = args.samples {
        cfg.samples = n;
    }
    if !args.cache {
        cfg.cache_dir = None;
    }
    if args.command == "docs" {
        return docs_from_out(&args);
    }
    let start = Instant::now();
    eprintln!(
        "reproduce {}: {} mode, {} samples per model, seed {}, {} threads, out {}",
        args.command,
        cfg.scale,
        cfg.samples,
        cfg.seed,
        cfg.threads,
        args.out.display()
    );
    let data = ExperimentData::new(common::mnist()?, cfg.scale, cfg.seed)?;
    match args.command.as_str() {
        "table1" => run_table1_and_2(&args, &data, &cfg, false)?,
        "transfer" => run_table1_and_2(&args, &data, &cfg, true)?,
        "cross" => run_cross(&args, &data, &cfg)?,
        "advtrain" => run_advtrain(&args, &data, &cfg)?,
        "scale" => run_scale(&args, &data, &cfg)?,
        "advstudy" => {
            let names: Vec<String> = match &args.rows {
                // `--rows none`: only tabulate the rows measured earlier.
                Some(r) => r
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty() && s != "none")
                    .collect(),
                None => ADV_STUDY.iter().map(|r| r.0.to_string()).collect(),
            };
            run_advstudy(&args, &data, &names)?
        }
        "all" => {
            run_table1_and_2(&args, &data, &cfg, true)?;
            run_cross(&args, &data, &cfg)?;
            run_advtrain(&args, &data, &cfg)?;
            run_scale(&args, &data, &cfg)?;
        }
        other => unreachable!("clap only lets the listed commands through: {other}"),
    }
    eprintln!("done in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The tables of docs/reproduction.md sit between `<!-- name:begin -->` / `<!-- name:end -->`
/// markers and are rewritten from a run's output, so that the document's figures come from a
/// command and are never typed by hand ([`common::replace_between_markers`]).
fn markers(doc: &str, key: &str, body: &str) -> intriguing::Result<String> {
    common::replace_between_markers(doc, key, body).map_err(intriguing::Error::InvalidConfig)
}
