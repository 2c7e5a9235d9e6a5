//! `infobound devices`: which backends are compiled in and which initialise here.

use infobound_backend::{BackendKind, BackendSpec, probe_device};

use crate::error::CliError;

/// Prints one line per known backend: compiled in or not, and whether it initialises.
pub fn run() -> Result<(), CliError> {
    for kind in BackendKind::ALL {
        let status = if !kind.is_compiled() {
            format!(
                "not compiled in (enable the `{}` cargo feature)",
                kind.name()
            )
        } else {
            match probe_device(&BackendSpec::new(kind)) {
                Ok(device) => format!("usable ({device:?})"),
                Err(e) => format!("compiled in, unavailable: {e}"),
            }
        };
        println!("{:<8} {status}", kind.name());
    }
    Ok(())
}
