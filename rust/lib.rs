//! initcore's numeric core.
//!
//! `kernels` is pure Rust on slices and shapes, generic over `f32`/`f64`, and knows nothing of
//! Python; `py` (compiled only with the `python` feature, as maturin builds it) borrows NumPy
//! arrays, validates them, releases the GIL and calls a kernel. This file only registers.

pub mod kernels;

#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
#[pyo3::pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(m)
}
