//! relgate-core: the native core of relgate. Pure Rust, no Python.
//!
//! - [`safetensors`], [`gguf`]: header parsing and validation that trust nothing in the file.
//! - [`merkle`]: RFC 6962 Merkle trees over BLAKE3, with inclusion proofs.
//! - [`attest`]: the `tensor-merkle-blake3-v1` weight attestation.
//! - [`rank`], [`bootstrap`], [`adjust`]: batched rank statistics for the gate and monitors.

pub mod adjust;
pub mod attest;
pub mod bootstrap;
pub mod error;
pub mod gguf;
pub mod merkle;
pub mod rank;
pub mod safetensors;

pub use error::{CoreError, Result};
