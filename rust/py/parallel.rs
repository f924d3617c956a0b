//! `set_num_threads` / `get_num_threads`: the size of initcore's Rayon pool (`kernels::parallel`).
use crate::kernels::parallel;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Sets the number of threads initcore's kernels may use (``1 <= n <= MAX_THREADS``).
#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    let max = parallel::MAX_THREADS;
    if n < 1 || n as u64 > max as u64 {
        return Err(PyValueError::new_err(format!(
            "set_num_threads: n must be in [1, {max}], got {n}"
        )));
    }
    parallel::set_num_threads(n as usize).map_err(|e| PyValueError::new_err(format!("set_num_threads: {e}")))
}

/// The number of threads initcore's kernels may use.
#[pyfunction]
fn get_num_threads() -> usize {
    parallel::num_threads()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_THREADS", parallel::MAX_THREADS)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    Ok(())
}
