//! Project automation: the invariant checks (`tidy`) and the Debian package (`deb`). A library
//! as well as `cargo xtask`, so that the package's end-to-end test builds the package the same
//! way.
#![allow(clippy::disallowed_methods)]

pub mod deb;
pub mod tidy;
