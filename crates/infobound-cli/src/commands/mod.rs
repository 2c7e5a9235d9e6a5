//! One module per subcommand.

pub mod compare;
pub mod datasets;
pub mod devices;
pub mod export;
pub mod live;
pub mod metrics;
pub mod runs;
pub mod ssl;
pub mod vae;
pub mod weights;
