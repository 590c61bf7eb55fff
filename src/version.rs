//! What this build is: its version and the revision of the source it was built from (`build.rs`
//! names it), as `noom --version`, the logs and `noom_build_info` say them.

/// The crate's version and the revision: `0.1.0 (4aec11a1090b)`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("NOOM_REVISION"), ")");
/// The git commit built (12 hex digits), what the builder said (`NOOM_REVISION`), or `unknown`.
pub const REVISION: &str = env!("NOOM_REVISION");
