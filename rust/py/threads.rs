//! `set_num_threads` / `get_num_threads`: the size of initcore's Rayon pool.
use crate::kernels::parallel;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Sets the number of threads initcore's kernels may use (``n >= 1``).
#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    if n < 1 {
        return Err(PyValueError::new_err(format!(
            "set_num_threads: n must be >= 1, got {n}"
        )));
    }
    parallel::set_num_threads(n as usize).map_err(PyValueError::new_err)
}

/// The number of threads initcore's kernels may use.
#[pyfunction]
fn get_num_threads() -> usize {
    parallel::num_threads()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    Ok(())
}
