//! `matmul(a, b, trans_a=False, trans_b=False, out=None)`: 2-D and NumPy-broadcast 3-D
//! products (see `kernels::matmul`). C- and Fortran-ordered operands and transposes are passed
//! to GEMM as strides, without copying; other layouts (negative or gapped strides) are copied
//! once to C order.

use super::array::{self, by_dtype, check_ndim, readonly, readwrite, same_dtype, shape_err, tuple};
use crate::kernels::matmul::{batched_matmul, Batched};
use crate::kernels::Real;
use numpy::{Element, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::borrow::Cow;

const F: &str = "matmul";

/// One operand as GEMM sees it: `batch` matrices of `rows×cols` with element strides.
struct Operand<'a, T: Clone> {
    data: Cow<'a, [T]>,
    batch: usize,
    batch_stride: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T: Clone> Operand<'a, T> {
    fn transposed(self, t: bool) -> Self {
        if t {
            Self {
                rows: self.cols,
                cols: self.rows,
                rs: self.cs,
                cs: self.rs,
                ..self
            }
        } else {
            self
        }
    }

    fn view(&self) -> Result<Batched<'_, T>, crate::kernels::ShapeError> {
        Batched::new(
            &self.data,
            self.batch,
            self.batch_stride,
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        )
    }
}

fn operand<'a, T: Element + Clone>(arg: &str, a: &'a PyReadonlyArrayDyn<'_, T>) -> PyResult<Operand<'a, T>> {
    let v = a.as_array();
    let shape = v.shape().to_vec();
    let (batch, rows, cols) = if shape.len() == 3 {
        (shape[0], shape[1], shape[2])
    } else {
        (1, shape[0], shape[1])
    };
    let nonneg = v.strides().iter().all(|&s| s >= 0);
    if nonneg && v.is_standard_layout() {
        if let Some(s) = v.to_slice_memory_order() {
            return Ok(Operand {
                data: Cow::Borrowed(s),
                batch,
                batch_stride: rows * cols,
                rows,
                cols,
                rs: cols,
                cs: 1,
            });
        }
    }
    if nonneg && shape.len() == 2 && v.t().is_standard_layout() {
        // Fortran order: a transposed C-ordered matrix, used through its strides.
        if let Some(s) = v.to_slice_memory_order() {
            return Ok(Operand {
                data: Cow::Borrowed(s),
                batch,
                batch_stride: rows * cols,
                rows,
                cols,
                rs: 1,
                cs: rows.max(1),
            });
        }
    }
    let owned = array::c_copy(F, arg, v)?;
    Ok(Operand {
        data: Cow::Owned(owned),
        batch,
        batch_stride: rows * cols,
        rows,
        cols,
        rs: cols,
        cs: 1,
    })
}

fn run<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    trans_a: bool,
    trans_b: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let ra = readonly::<T>(F, "a", a)?;
    let rb = readonly::<T>(F, "b", b)?;
    let (sa, sb) = (ra.shape().to_vec(), rb.shape().to_vec());
    check_ndim(F, "a", &sa, &[2, 3])?;
    check_ndim(F, "b", &sb, &[2, 3])?;
    let oa = operand("'a'", &ra)?.transposed(trans_a);
    let ob = operand("'b'", &rb)?.transposed(trans_b);
    if oa.cols != ob.rows {
        return Err(PyValueError::new_err(format!(
            "{F}: inner dimensions differ: a{} has {} columns, b{} has {} rows (a: {}, b: {})",
            if trans_a { ".T" } else { "" },
            oa.cols,
            if trans_b { ".T" } else { "" },
            ob.rows,
            tuple(&sa),
            tuple(&sb)
        )));
    }
    if !(oa.batch == ob.batch || oa.batch == 1 || ob.batch == 1) {
        return Err(PyValueError::new_err(format!(
            "{F}: batch dimensions do not broadcast: a {} and b {}",
            tuple(&sa),
            tuple(&sb)
        )));
    }
    let batch = oa.batch.max(ob.batch);
    let want: Vec<usize> = if sa.len() == 3 || sb.len() == 3 {
        vec![batch, oa.rows, ob.cols]
    } else {
        vec![oa.rows, ob.cols]
    };
    let (va, vb) = (
        oa.view().map_err(|e| shape_err(F, e))?,
        ob.view().map_err(|e| shape_err(F, e))?,
    );
    match out {
        Some(o) => {
            let mut w = readwrite::<T>(F, "out", o)?;
            array::check_shape(F, "out", w.shape(), &want, "the shape of the product")?;
            let c = array::c_slice_mut(F, "out", &mut w)?;
            py.detach(|| batched_matmul(c, va, vb)).map_err(|e| shape_err(F, e))?;
            Ok(o.clone().unbind())
        }
        None => {
            // Unzeroed, as NumPy's own matmul output: `batched_matmul` writes every element (a
            // zero inner dimension fills zeros), and on an error the array is dropped unseen.
            // Zeroing was a pass over C before the product (5% of 2048³ on one thread).
            let arr = array::uninit::<T>(py, F, "the product", &want)?;
            {
                let mut w = arr.readwrite();
                let c = w.as_slice_mut().expect("a new array is contiguous");
                py.detach(|| batched_matmul(c, va, vb)).map_err(|e| shape_err(F, e))?;
            }
            Ok(arr.into_any().unbind())
        }
    }
}

/// Matrix product of 2-D or (broadcast) 3-D float arrays, as ``np.matmul``.
///
/// ``trans_a``/``trans_b`` multiply by the transpose of the last two axes without copying.
/// ``out`` (C-contiguous, same dtype, the product's shape, not overlapping ``a`` or ``b``)
/// receives the result and is returned.
#[pyfunction]
#[pyo3(signature = (a, b, trans_a=false, trans_b=false, out=None))]
fn matmul<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    trans_a: bool,
    trans_b: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    by_dtype!(same_dtype(F, &[("a", Some(a)), ("b", Some(b)), ("out", out)])? => run(py, a, b, trans_a, trans_b, out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(matmul, m)?)
}
