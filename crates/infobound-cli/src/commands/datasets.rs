//! `infobound datasets`: list, describe, render and preview the procedural datasets.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use infobound_data::{
    DataError, FactorMatrix, dataset_by_name, dataset_info, factor_traversal_grid, list_datasets,
    manifest, manifest_names, save_png_grid,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::CliError;

/// Arguments of `infobound datasets`.
#[derive(Debug, Args)]
pub struct DatasetsArgs {
    #[command(subcommand)]
    command: DatasetsCommand,
}

#[derive(Debug, Subcommand)]
enum DatasetsCommand {
    /// One line per procedural dataset: factors, image shape, number of images.
    List,
    /// Factors, grids and official files of one dataset (procedural or manifest only).
    Show {
        /// Dataset name, e.g. `shapes3d` or `cifar10`.
        name: String,
    },
    /// Render the image of one factor vector to a PNG.
    Render {
        /// Procedural dataset name.
        name: String,
        /// Factor class indices in storage order, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        factors: Vec<usize>,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
    },
    /// PNG grid varying each factor along one row, from a random base state.
    Grid {
        /// Procedural dataset name.
        name: String,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Seed of the base state.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// Runs `infobound datasets <subcommand>`.
pub fn run(args: DatasetsArgs) -> Result<(), CliError> {
    match args.command {
        DatasetsCommand::List => {
            for info in list_datasets() {
                let factors: Vec<String> = info
                    .factor_names
                    .iter()
                    .zip(&info.factor_sizes)
                    .map(|(name, size)| format!("{name}={size}"))
                    .collect();
                let shape = info.observation_shape;
                println!(
                    "{:<9} {}x{}x{} {:>7} images  {}",
                    info.name,
                    shape.channels,
                    shape.height,
                    shape.width,
                    info.num_images,
                    factors.join(" ")
                );
            }
            println!("manifests (real files): {}", manifest_names().join(", "));
            Ok(())
        }
        DatasetsCommand::Show { name } => show(&name),
        DatasetsCommand::Render { name, factors, out } => {
            let dataset = dataset_by_name(&name)?;
            let matrix = FactorMatrix::new(factors.len(), factors)?;
            let images =
                dataset.observations_from_factors(&matrix, &mut ChaCha8Rng::seed_from_u64(0))?;
            save_png_grid(&images, 1, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        DatasetsCommand::Grid { name, out, seed } => {
            let dataset = dataset_by_name(&name)?;
            let (images, columns) = factor_traversal_grid(dataset.as_ref(), seed)?;
            save_png_grid(&images, columns, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

/// Prints the procedural summary and/or the manifest of `name`.
fn show(name: &str) -> Result<(), CliError> {
    let info = dataset_info(name).ok();
    let manifest = match manifest(name) {
        Ok(m) => Some(m),
        Err(DataError::UnknownDataset { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if info.is_none() && manifest.is_none() {
        return Err(CliError::Usage(format!(
            "unknown dataset `{name}`; known: {}",
            manifest_names().join(", ")
        )));
    }
    if let Some(info) = info {
        println!("{} (procedural): {}", info.name, info.description);
    }
    if let Some(m) = manifest {
        println!("{}: {}", m.title, m.description);
        println!("  {} | {} | license {}", m.citation, m.homepage, m.license);
        let o = m.observation;
        println!(
            "  images: {} of {}x{}x{} {}",
            m.num_images, o.channels, o.height, o.width, m.pixel_dtype
        );
        for f in &m.factors {
            println!(
                "  factor {:<17} {:>3} values {:?}",
                f.name, f.size, f.values
            );
        }
        if !m.class_names.is_empty() {
            println!(
                "  {} classes: {}",
                m.class_names.len(),
                m.class_names.join(", ")
            );
        }
        for file in &m.files {
            println!(
                "  file {} ({}) {}\n    sha256: {}  md5: {}",
                file.name,
                file.format,
                file.url,
                file.sha256.as_deref().unwrap_or("unknown"),
                file.md5.as_deref().unwrap_or("unknown")
            );
        }
    }
    Ok(())
}
