//! One type per activation implementing `f(x)` and `dy·f'(x)`, so that every kernel loop is
//! monomorphic and vectorizes; the formulas are the table of the parent module.

use super::{SELU_ALPHA, SELU_LAMBDA};

/// One activation as a type, so that each gets its own monomorphic (vectorizable) loop.
pub(crate) trait ElementOp<T>: Copy + Send + Sync {
    /// `f(x)`.
    fn f(self, x: T) -> T;
    /// `dy · f'(x)`, given `y = f(x)`.
    fn grad(self, dy: T, x: T, y: T) -> T;
}

pub(crate) mod op {
    use super::{ElementOp, SELU_ALPHA, SELU_LAMBDA};
    use crate::kernels::vmath::VMath;

    #[derive(Clone, Copy)]
    pub struct Identity;
    #[derive(Clone, Copy)]
    pub struct Sigmoid;
    #[derive(Clone, Copy)]
    pub struct Tanh;
    #[derive(Clone, Copy)]
    pub struct Relu;
    #[derive(Clone, Copy)]
    pub struct LeakyRelu<T>(pub T);
    #[derive(Clone, Copy)]
    pub struct Elu<T>(pub T);
    #[derive(Clone, Copy)]
    pub struct Selu;

    impl<T: VMath> ElementOp<T> for Identity {
        #[inline(always)]
        fn f(self, x: T) -> T {
            x
        }
        #[inline(always)]
        fn grad(self, dy: T, _: T, _: T) -> T {
            dy
        }
    }

    impl<T: VMath> ElementOp<T> for Sigmoid {
        #[inline(always)]
        fn f(self, x: T) -> T {
            x.vsigmoid()
        }
        #[inline(always)]
        fn grad(self, dy: T, _: T, y: T) -> T {
            dy * (y * (T::one() - y))
        }
    }

    impl<T: VMath> ElementOp<T> for Tanh {
        #[inline(always)]
        fn f(self, x: T) -> T {
            x.vtanh()
        }
        #[inline(always)]
        fn grad(self, dy: T, _: T, y: T) -> T {
            dy * (T::one() - y * y)
        }
    }

    impl<T: VMath> ElementOp<T> for Relu {
        #[inline(always)]
        fn f(self, x: T) -> T {
            // `x < 0` (not `x > 0`) so that NaN passes through.
            if x < T::zero() {
                T::zero()
            } else {
                x
            }
        }
        #[inline(always)]
        fn grad(self, dy: T, x: T, _: T) -> T {
            if x > T::zero() {
                dy
            } else {
                T::zero()
            }
        }
    }

    impl<T: VMath> ElementOp<T> for LeakyRelu<T> {
        #[inline(always)]
        fn f(self, x: T) -> T {
            if x > T::zero() {
                x
            } else {
                self.0 * x
            }
        }
        #[inline(always)]
        fn grad(self, dy: T, x: T, _: T) -> T {
            if x > T::zero() {
                dy
            } else {
                self.0 * dy
            }
        }
    }

    impl<T: VMath> ElementOp<T> for Elu<T> {
        #[inline(always)]
        fn f(self, x: T) -> T {
            // Only the x ≤ 0 lanes keep `neg`; NaN stays NaN through the select.
            let neg = self.0 * (if x > T::zero() { T::zero() } else { x }).vexpm1_nonpos();
            if x > T::zero() {
                x
            } else {
                neg
            }
        }
        #[inline(always)]
        fn grad(self, dy: T, x: T, y: T) -> T {
            if x > T::zero() {
                dy
            } else {
                dy * (y + self.0)
            }
        }
    }

    impl<T: VMath> ElementOp<T> for Selu {
        #[inline(always)]
        fn f(self, x: T) -> T {
            let neg = T::of(SELU_LAMBDA * SELU_ALPHA) * (if x > T::zero() { T::zero() } else { x }).vexpm1_nonpos();
            if x > T::zero() {
                T::of(SELU_LAMBDA) * x
            } else {
                neg
            }
        }
        #[inline(always)]
        fn grad(self, dy: T, x: T, y: T) -> T {
            if x > T::zero() {
                dy * T::of(SELU_LAMBDA)
            } else {
                dy * (y + T::of(SELU_LAMBDA * SELU_ALPHA))
            }
        }
    }
}
