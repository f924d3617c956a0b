//! Thin Python bindings: borrow NumPy arrays, validate, release the GIL, call a kernel, map
//! errors to Python exceptions. No arithmetic lives here.

use pyo3::prelude::*;

mod activation;
pub mod array;
mod batch_norm;
mod clip;
mod dense;
mod dropout;
mod fused;
mod losses;
mod matmul;
mod optim;
mod parallel;
mod stats;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    parallel::register(m)?;
    matmul::register(m)?;
    dense::register(m)?;
    dropout::register(m)?;
    activation::register(m)?;
    batch_norm::register(m)?;
    losses::register(m)?;
    clip::register(m)?;
    optim::register(m)?;
    stats::register(m)?;
    fused::register(m)?;
    Ok(())
}
