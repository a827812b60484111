//! Images: loading `docker save` archives, OCI image archives and OCI image layout
//! directories into a content-addressed store, and finding an image's layers and config.
//!
//! Everything read from an archive is untrusted. Blobs are checked against their sha256
//! digests, JSON is size-limited and parsed strictly, and layers are extracted through
//! directory fds that never follow a symlink, into a scratch directory of the store that
//! becomes the layer only once its content matched its digest.
//!
//! ```text
//! <store>/lock                      flock: one load or remove at a time
//! <store>/names.json                {"names": {"alpine:3.20": "sha256:<image id>"}}
//! <store>/images/sha256/<id>.json   one record per image: manifest digest, layer diff_ids
//! <store>/blobs/sha256/<hex>        configs and manifests, as loaded (verified)
//! <store>/layers/sha256/<diff_id>/  a layer's files: an overlayfs lower directory
//! <store>/layers/sha256/<diff_id>.json  its size and what extraction changed
//! <store>/layers/setuid/sha256/<diff_id>/  the same layer with its setuid/setgid bits kept
//!                                   (loaded with keep_setuid; its record says so)
//! <store>/tmp/                      loads in progress (cleared by the next load)
//! ```
//!
//! An image id is the sha256 of its config, as docker's; a layer is named by its diff_id
//! (the sha256 of the uncompressed tar), so one layer is stored once whatever the archive
//! or compression it came in. Whiteouts are stored the way overlayfs reads them in a lower
//! directory: `.wh.NAME` becomes a 0:0 character device NAME, `.wh..wh..opq` becomes the
//! xattr `trusted.overlay.opaque=y` (and `user.overlay.opaque=y`, for `userxattr` mounts).

pub mod archive;
pub mod config;
pub mod digest;
pub mod layer;
pub mod lookup;
pub mod reference;
pub mod store;

use std::path::PathBuf;

pub use config::ImageConfig;
pub use digest::Digest;
pub use store::{Image, LayerInfo, LoadOptions, LoadReport, Progress, Removed, Store};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("open `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mkdir `{}`: {source}", path.display())]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rename `{}` to `{}`: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("remove `{}`: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lock `{}`: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A failure while loading `archive`: the archive is named once, here.
    #[error("`{}`: {source}", archive.display())]
    In {
        archive: PathBuf,
        source: Box<ImageError>,
    },
    #[error("not an image archive: {why}")]
    NotAnImage { why: String },
    #[error("reading the tar archive: {source}")]
    Archive { source: std::io::Error },
    #[error("tar entry `{entry}` claims {size} bytes at offset {offset}, past the end of the archive ({len} bytes): truncated")]
    Truncated {
        entry: String,
        offset: u64,
        size: u64,
        len: u64,
    },
    #[error("`{file}`: invalid JSON: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("`{file}`: {why}")]
    Malformed { file: String, why: String },
    #[error("`{file}` is larger than {limit} bytes")]
    TooLarge { file: String, limit: u64 },
    #[error("`{file}`: {what} is not supported")]
    Unsupported { file: String, what: String },
    #[error("`{file}`: no image for this host's platform {wanted} (the index has: {available})")]
    Platform {
        file: String,
        wanted: String,
        available: String,
    },
    #[error("blob `{blob}` is missing from the archive")]
    MissingBlob { blob: String },
    #[error("blob `{blob}`: its sha256 is {actual}, expected {expected} (the archive is corrupt or was tampered with)")]
    Digest {
        blob: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob `{blob}` is {actual} bytes, its descriptor says {expected}")]
    Size {
        blob: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer `{blob}`: its uncompressed content has sha256 {actual}, the image config says {expected}")]
    DiffId {
        blob: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer `{blob}`: {why}")]
    Layer { blob: String, why: String },
    /// A tar entry refused as hostile or impossible to apply safely.
    #[error("layer `{blob}`: tar entry `{entry}`: {why}")]
    Entry {
        blob: String,
        entry: String,
        why: String,
    },
    #[error("layer `{blob}`: tar entry `{entry}`: {step}: {errno}")]
    Extract {
        blob: String,
        entry: String,
        step: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("no such image: `{reference}` (store `{}`)", store.display())]
    NotFound { reference: String, store: PathBuf },
    #[error("image `{reference}` is damaged: layer {layer} is not whole in the store (load its archive again; lonely images --check --repair lists and cleans what is broken)")]
    Damaged { reference: String, layer: String },
    /// docker's words: a running container's layers cannot go from under it.
    #[error("conflict: unable to delete {id} (cannot be forced) - image is being used by running container {container}")]
    InUse { id: String, container: String },
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {id}")]
    KeptBy {
        reference: String,
        id: String,
        container: String,
    },
    #[error("`{reference}` matches several images: {}", matches.join(", "))]
    Ambiguous {
        reference: String,
        matches: Vec<String>,
    },
    #[error("image reference `{reference}` {why}")]
    BadReference {
        reference: String,
        why: &'static str,
    },
}

/// The platform names this process's images must be built for (GOARCH spelling).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        other => other,
    }
}
