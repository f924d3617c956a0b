//! The fused path: a whole network trained in one call per step, or per run of steps.
//!
//! - `network.rs`: the network's layers and preallocated workspaces; forward and backward
//!   through the same Dense, BatchNorm, activation and dropout kernels as the layer-by-layer
//!   path (`network_team.rs`: the same phases split across a thread team);
//! - `step.rs`: one training step (forward, loss, backward, clipping, every optimizer update);
//!   `step_team.rs` runs its phases on a team; `optimizer.rs`: the step's optimizer enum over
//!   the `torch.optim` rules; `evaluate.rs`: evaluation and the native metrics;
//! - `epoch.rs`: many steps in one call (batches gathered in a given order, loss and accuracy
//!   sums, early return for callbacks, progress and signals).
//!
//! Every result is bit-identical to the layer-by-layer path and to any thread count (tests in
//! the `*_tests.rs` files).

pub mod epoch;
pub mod evaluate;
pub mod network;
pub mod optimizer;
pub mod step;
