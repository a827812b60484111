//! The #[napi] surface of the image store: converts types and errors, nothing else.
//! Loading and removing run on the libuv threadpool (AsyncTask); listing and inspecting
//! read a few small files and return at once.

use std::collections::BTreeMap;
use std::path::Path;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::images::{self, ImageError, Store};

fn failed(e: ImageError) -> Error {
    Error::from_reason(e.to_string())
}

#[napi(object)]
pub struct ImageLayer {
    pub diff_id: String,
    /// Absolute path of the layer's directory (an overlayfs lowerdir).
    pub dir: String,
    /// Uncompressed size in bytes.
    pub size: f64,
}

#[napi(object)]
pub struct ImageConfigInfo {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub created: Option<String>,
}

#[napi(object)]
pub struct ImageInfo {
    pub id: String,
    pub names: Vec<String>,
    pub manifest: Option<String>,
    /// Lowest first.
    pub layers: Vec<ImageLayer>,
    pub config: ImageConfigInfo,
    pub size: f64,
    /// Seconds since the epoch.
    pub loaded: f64,
    /// Its layers were loaded with their setuid/setgid bits kept.
    pub keep_setuid: bool,
}

#[napi(object)]
pub struct LoadResult {
    pub images: Vec<ImageInfo>,
    pub layers_added: u32,
    pub layers_reused: u32,
    pub notes: Vec<String>,
}

#[napi(object)]
pub struct LoadProgress {
    /// `extracting`, `verifying` (a layer already stored) or `done`.
    pub state: String,
    pub reused: bool,
    pub layer: u32,
    pub layers: u32,
    pub diff_id: String,
    pub bytes: f64,
    pub size: f64,
    pub done: f64,
    pub total: f64,
}

#[napi(object)]
pub struct RemoveResult {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
    pub layers_removed: u32,
}

/// A layer an image needs that the store does not have whole.
#[napi(object)]
pub struct LayerDamage {
    pub image: String,
    pub names: Vec<String>,
    pub layer: String,
    pub problem: String,
}

impl From<images::Image> for ImageInfo {
    fn from(i: images::Image) -> Self {
        let c = i.config;
        ImageInfo {
            id: i.id,
            names: i.names,
            manifest: i.manifest,
            layers: i
                .layers
                .into_iter()
                .map(|l| ImageLayer {
                    diff_id: l.diff_id,
                    dir: l.dir.to_string_lossy().into_owned(),
                    size: l.size as f64,
                })
                .collect(),
            config: ImageConfigInfo {
                entrypoint: c.entrypoint,
                cmd: c.cmd,
                env: c.env,
                working_dir: c.working_dir,
                user: c.user,
                labels: c.labels,
                stop_signal: c.stop_signal,
                exposed_ports: c.exposed_ports,
                volumes: c.volumes,
                architecture: c.architecture,
                os: c.os,
                variant: c.variant,
                created: c.created,
            },
            size: i.size as f64,
            loaded: i.loaded as f64,
            keep_setuid: i.keep_setuid,
        }
    }
}

impl From<&images::Progress> for LoadProgress {
    fn from(p: &images::Progress) -> Self {
        LoadProgress {
            state: p.state.to_owned(),
            reused: p.reused,
            layer: p.layer,
            layers: p.layers,
            diff_id: p.diff_id.clone(),
            bytes: p.bytes as f64,
            size: p.size as f64,
            done: p.done as f64,
            total: p.total as f64,
        }
    }
}

pub struct LoadTask {
    path: String,
    store: String,
    keep_setuid: bool,
    on_progress: Option<ThreadsafeFunction<LoadProgress, (), LoadProgress, Status, false>>,
}

impl Task for LoadTask {
    type Output = images::LoadReport;
    type JsValue = LoadResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let store = Store::new(&self.store).map_err(failed)?;
        let tsfn = self.on_progress.as_ref();
        let mut report = |p: &images::Progress| {
            if let Some(f) = tsfn {
                f.call(p.into(), ThreadsafeFunctionCallMode::NonBlocking);
            }
        };
        store
            .load(
                Path::new(&self.path),
                images::LoadOptions {
                    keep_setuid: self.keep_setuid,
                },
                &mut report,
            )
            .map_err(failed)
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(LoadResult {
            images: out.images.into_iter().map(Into::into).collect(),
            layers_added: out.layers_added,
            layers_reused: out.layers_reused,
            notes: out.notes,
        })
    }
}

/// Loads every image of a docker-archive, OCI archive or OCI layout directory into the
/// store, on the threadpool. `onProgress` is called on the JS thread as layers are read.
/// `keepSetuid` keeps the layers' setuid/setgid bits (stored apart from layers without them).
#[napi(ts_return_type = "Promise<LoadResult>")]
pub fn load_image(
    path: String,
    store_dir: String,
    keep_setuid: bool,
    on_progress: Option<ThreadsafeFunction<LoadProgress, (), LoadProgress, Status, false>>,
) -> AsyncTask<LoadTask> {
    AsyncTask::new(LoadTask {
        path,
        store: store_dir,
        keep_setuid,
        on_progress,
    })
}

/// The store's images, newest first.
#[napi]
pub fn list_images(store_dir: String) -> Result<Vec<ImageInfo>> {
    let store = Store::new(&store_dir).map_err(failed)?;
    Ok(store
        .list()
        .map_err(failed)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// The image a reference names (`name[:tag]`, `sha256:<id>`, an id prefix), with its layer
/// directories lowest first and its config.
#[napi]
pub fn inspect_image(store_dir: String, reference: String) -> Result<ImageInfo> {
    let store = Store::new(&store_dir).map_err(failed)?;
    store.inspect(&reference).map(Into::into).map_err(failed)
}

/// Every image's layers checked (each whole, with its completion marker); `repair` removes
/// what damage left so that the next load extracts those layers again.
#[napi]
pub fn check_images(store_dir: String, repair: bool) -> Result<Vec<LayerDamage>> {
    let store = Store::new(&store_dir).map_err(failed)?;
    Ok(store
        .check(repair)
        .map_err(failed)?
        .into_iter()
        .map(|d| LayerDamage {
            image: d.image,
            names: d.names,
            layer: d.layer,
            problem: d.problem,
        })
        .collect())
}

pub struct RemoveTask {
    store: String,
    reference: String,
    force: bool,
}

impl Task for RemoveTask {
    type Output = images::Removed;
    type JsValue = RemoveResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let store = Store::new(&self.store).map_err(failed)?;
        store.remove(&self.reference, self.force).map_err(failed)
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(RemoveResult {
            untagged: out.untagged,
            deleted: out.deleted,
            layers_removed: out.layers_removed,
        })
    }
}

/// Removes a name (or, given an id, the image and all its names), then deletes the layers
/// and blobs no image uses any more. Runs on the threadpool.
#[napi(ts_return_type = "Promise<RemoveResult>")]
pub fn remove_image(store_dir: String, reference: String, force: bool) -> AsyncTask<RemoveTask> {
    AsyncTask::new(RemoveTask {
        store: store_dir,
        reference,
        force,
    })
}

/// A small file of an image (`etc/passwd`), read inside its topmost layer that has it (images/lookup.rs).
#[napi]
pub fn read_image_file(
    layer_dirs: Vec<String>,
    path: String,
    max_bytes: u32,
) -> Result<Option<Buffer>> {
    crate::images::lookup::read_in_layers(&layer_dirs, &path, max_bytes as u64)
        .map(|found| found.map(Buffer::from))
        .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))
}

/// An exclusive `flock` on `path` (created 0600), held through the returned fd (CLOEXEC) for as
/// long as it is open; null when another open file holds it. A container's writable layer is
/// locked while the container lives: the stale sweep takes what nobody holds, whatever the pid.
#[napi]
pub fn lock_file(path: String) -> Result<Option<i32>> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| Error::from_reason(format!("open `{path}`: {e}")))?;
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(Error::from_reason(format!("flock `{path}`: {e}")));
    }
    Ok(Some(file.into_raw_fd()))
}
