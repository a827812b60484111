//! The image store: layers as directories named by diff_id, configs and manifests as
//! blobs named by digest, one record per image, and an index of names to image ids.
//! Loads and removals hold an exclusive flock on `<store>/lock`; readers take no lock
//! (every file is replaced by rename, so a reader sees the old or the new version).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::archive::{self, Decoder, ImagePlan, LayerBlob, Source};
use super::config::{self, ImageConfig};
use super::digest::{HashingReader, ProgressReader};
use super::layer::{self, Notes};
use super::{reference, Digest, ImageError};

/// An image as stored: what `run({ image })` needs to stack its layers and apply its config.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `sha256:<hex>` of the config, as docker's image ids.
    pub id: String,
    /// Short forms (`alpine:3.20`, `test/two:v1`), sorted; empty for an image known by id only.
    pub names: Vec<String>,
    /// The manifest's digest, for images that came with one (OCI), else None (docker save).
    pub manifest: Option<String>,
    /// Lowest first: the first one is the base; as overlayfs lowerdirs they go in reverse.
    pub layers: Vec<LayerInfo>,
    pub config: ImageConfig,
    /// Sum of the layers' uncompressed sizes.
    pub size: u64,
    /// When it was loaded, in seconds since the epoch.
    pub loaded: u64,
    /// Its layers were loaded with their setuid/setgid bits (`LoadOptions::keep_setuid`).
    pub keep_setuid: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    pub diff_id: String,
    /// Absolute path of the layer's directory.
    pub dir: PathBuf,
    /// Uncompressed tar size in bytes.
    pub size: u64,
}

/// How a load extracts layers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadOptions {
    /// Keep the files' setuid/setgid bits (cleared by default). Such a layer is stored apart
    /// (`layers/setuid/sha256/<diff_id>`): one loaded without them is never taken for it.
    pub keep_setuid: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub images: Vec<Image>,
    pub layers_added: u32,
    pub layers_reused: u32,
    /// What was skipped or changed (device nodes, setuid bits, other platforms...).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
    pub layers_removed: u32,
}

/// Reported while a layer is read: `extracting` a new layer, `verifying` the blob of a layer
/// already stored, `done` when it is finished (with `reused`).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub state: &'static str,
    pub reused: bool,
    /// 0-based, over all layers of all images in the archive.
    pub layer: u32,
    pub layers: u32,
    pub diff_id: String,
    /// Bytes of this layer's blob read, and its size.
    pub bytes: u64,
    pub size: u64,
    /// Bytes of all blobs read, and their total.
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: String,
    manifest: Option<String>,
    layers: Vec<String>,
    loaded: u64,
    /// Its layers are the ones with setuid/setgid bits kept (records without it: cleared).
    #[serde(default)]
    keep_setuid: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Names {
    names: BTreeMap<String, String>,
}

impl Names {
    /// The names of the image `id` (`sha256:<hex>`), in name order.
    fn of(&self, id: &str) -> Vec<String> {
        self.names
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerMeta {
    diff_id: String,
    size: u64,
    #[serde(default)]
    notes: Vec<String>,
}

/// Layers as extracted by default (setuid/setgid bits cleared), and with those bits kept.
const LAYERS: &str = "layers/sha256";
const LAYERS_SETUID: &str = "layers/setuid/sha256";

/// Progress is reported every this many bytes of a blob.
const PROGRESS_STEP: u64 = 1 << 20;

pub struct Store {
    root: PathBuf,
}

/// A layer an image needs that the store does not have whole (images.check()).
#[derive(Debug, Clone)]
pub struct Damage {
    pub image: String,
    pub names: Vec<String>,
    pub layer: String,
    pub problem: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn io_read(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to a temporary sibling and renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|source| ImageError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| ImageError::Rename {
        from: tmp,
        to: path.to_owned(),
        source,
    })
}

impl Store {
    /// A store rooted at `root` (made absolute). Nothing is touched until it is used.
    pub fn new(root: impl AsRef<Path>) -> Result<Store, ImageError> {
        let root = root.as_ref();
        let root = std::path::absolute(root).map_err(|source| ImageError::Open {
            path: root.to_owned(),
            source,
        })?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn names_file(&self) -> PathBuf {
        self.root.join("names.json")
    }

    fn record_file(&self, id: &Digest) -> PathBuf {
        self.root
            .join("images/sha256")
            .join(format!("{}.json", id.hex()))
    }

    fn blob_file(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Where layers extracted with (`keep_setuid`) or without their setuid/setgid bits live.
    fn layers_sub(keep_setuid: bool) -> &'static str {
        if keep_setuid {
            LAYERS_SETUID
        } else {
            LAYERS
        }
    }

    /// The directory of the layer with this diff_id (whether or not it is stored).
    pub fn layer_dir(&self, diff_id: &Digest, keep_setuid: bool) -> PathBuf {
        self.root
            .join(Self::layers_sub(keep_setuid))
            .join(diff_id.hex())
    }

    fn layer_meta_file(&self, diff_id: &Digest, keep_setuid: bool) -> PathBuf {
        self.root
            .join(Self::layers_sub(keep_setuid))
            .join(format!("{}.json", diff_id.hex()))
    }

    /// A layer counts as stored only with its completion marker (its `<hex>.json`, written
    /// after the directory was renamed into place, removed first when it is deleted).
    fn layer_present(&self, diff_id: &Digest, keep_setuid: bool) -> bool {
        self.layer_dir(diff_id, keep_setuid).is_dir()
            && self.layer_meta_file(diff_id, keep_setuid).is_file()
    }

    /// Moves `path` into tmp/ (one rename: it is gone from where it was, whole), then deletes
    /// it; a crash in between leaves it in tmp/, which the next locked step clears.
    fn remove_away(&self, path: &Path) -> Result<(), ImageError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = std::fs::DirBuilder::new().mode(0o700).create(self.tmp());
        let away = self
            .tmp()
            .join(format!("gone-{}-{name}", std::process::id()));
        std::fs::rename(path, &away).map_err(|source| ImageError::Rename {
            from: path.to_owned(),
            to: away.clone(),
            source,
        })?;
        layer::remove_tree(&away).map_err(|source| ImageError::Remove { path: away, source })
    }

    /// A stored layer's size and extraction notes (defaults when its file is unreadable).
    fn layer_meta(&self, diff_id: &Digest, keep_setuid: bool) -> LayerMeta {
        std::fs::read(self.layer_meta_file(diff_id, keep_setuid))
            .ok()
            .and_then(|b| serde_json::from_slice::<LayerMeta>(&b).ok())
            .unwrap_or_default()
    }

    fn init(&self) -> Result<(), ImageError> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        // Mode 0700: a kept setuid-root file in a layer must not be reachable by other host users.
        for sub in [
            "",
            "tmp",
            "images/sha256",
            "blobs/sha256",
            LAYERS,
            LAYERS_SETUID,
        ] {
            let dir = self.root.join(sub);
            b.create(&dir)
                .map_err(|source| ImageError::Mkdir { path: dir, source })?;
        }
        Ok(())
    }

    fn lock(&self) -> Result<File, ImageError> {
        let path = self.root.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| ImageError::Lock {
                path: path.clone(),
                source,
            })?;
        file.lock()
            .map_err(|source| ImageError::Lock { path, source })?;
        Ok(file)
    }

    /// Leftovers of a load that died: only ever called with the lock held.
    fn clear_tmp(&self) -> Result<(), ImageError> {
        let tmp = self.tmp();
        let entries = match std::fs::read_dir(&tmp) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(ImageError::Read { path: tmp, source }),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            layer::remove_tree(&path).map_err(|source| ImageError::Remove { path, source })?;
        }
        Ok(())
    }

    fn read_names(&self) -> Result<Names, ImageError> {
        let path = self.names_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                file: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Names::default()),
            Err(source) => Err(ImageError::Read { path, source }),
        }
    }

    fn write_names(&self, names: &Names) -> Result<(), ImageError> {
        write_atomic(
            &self.names_file(),
            &serde_json::to_vec_pretty(names).expect("names serialize"),
        )
    }

    fn read_record(&self, id: &Digest) -> Result<Record, ImageError> {
        let path = self.record_file(id);
        let bytes = std::fs::read(&path).map_err(io_read(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            file: path.display().to_string(),
            source,
        })
    }

    /// Every image id with a record.
    fn ids(&self) -> Result<Vec<Digest>, ImageError> {
        let dir = self.root.join("images/sha256");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(ImageError::Read { path: dir, source }),
        };
        let mut ids: Vec<Digest> = entries
            .flatten()
            .filter_map(|e| Digest::from_hex(e.file_name().to_str()?.strip_suffix(".json")?))
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn image(&self, id: &Digest, names: &Names) -> Result<Image, ImageError> {
        let record = self.read_record(id)?;
        let config_path = self.blob_file(id);
        let bytes = std::fs::read(&config_path).map_err(io_read(&config_path))?;
        let parsed = config::parse(&bytes, &config_path.display().to_string())?;
        let mut layers = Vec::new();
        for diff in &record.layers {
            let diff_id = Digest::parse(diff).ok_or_else(|| ImageError::Malformed {
                file: self.record_file(id).display().to_string(),
                why: format!("layer {diff:?} is not a sha256 digest"),
            })?;
            let size = self.layer_meta(&diff_id, record.keep_setuid).size;
            layers.push(LayerInfo {
                diff_id: diff.clone(),
                dir: self.layer_dir(&diff_id, record.keep_setuid),
                size,
            });
        }
        let id_text = id.to_string();
        Ok(Image {
            names: names.of(&id_text),
            id: id_text,
            manifest: record.manifest,
            size: layers.iter().map(|l| l.size).sum(),
            layers,
            config: parsed.config,
            loaded: record.loaded,
            keep_setuid: record.keep_setuid,
        })
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let names = self.read_names()?;
        let mut out = Vec::new();
        for id in self.ids()? {
            out.push(self.image(&id, &names)?);
        }
        out.sort_by(|a, b| {
            b.loaded
                .cmp(&a.loaded)
                .then_with(|| a.names.cmp(&b.names))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// The image `reference` names: `name[:tag]`, `name@sha256:<manifest>`, `sha256:<id>`,
    /// or a unique prefix of an id's hex.
    pub fn inspect(&self, reference: &str) -> Result<Image, ImageError> {
        let names = self.read_names()?;
        let id = self.resolve(reference, &names)?.0;
        let image = self.image(&id, &names)?;
        let keep = image.keep_setuid;
        // What runs from it must have every file: a damaged layer is an error, never a root.
        for l in &image.layers {
            if let Some(diff_id) =
                Digest::parse(&l.diff_id).filter(|d| !self.layer_present(d, keep))
            {
                return Err(ImageError::Damaged {
                    reference: reference.to_owned(),
                    layer: diff_id.to_string(),
                });
            }
        }
        Ok(image)
    }

    /// Every image's layers, each present with its completion marker; with `repair`, what
    /// damage left (a layer directory without its marker, a marker without its directory, a
    /// dead load's or deletion's leftovers in tmp/) is removed, so the next load extracts the
    /// layer again. The images that need it are listed either way.
    pub fn check(&self, repair: bool) -> Result<Vec<Damage>, ImageError> {
        let _lock = self.lock()?;
        let names = self.read_names()?;
        let mut damage = Vec::new();
        for id in self.ids()? {
            let record = self.read_record(&id)?;
            for diff in &record.layers {
                let Some(diff_id) = Digest::parse(diff) else {
                    continue;
                };
                if self.layer_present(&diff_id, record.keep_setuid) {
                    continue;
                }
                let dir = self.layer_dir(&diff_id, record.keep_setuid);
                let marker = self.layer_meta_file(&diff_id, record.keep_setuid);
                let problem = if dir.exists() {
                    "incomplete: its directory has no completion marker"
                } else {
                    "missing"
                };
                if repair {
                    if dir.exists() {
                        self.remove_away(&dir)?;
                    }
                    let _ = std::fs::remove_file(&marker);
                }
                damage.push(Damage {
                    image: id.to_string(),
                    names: names.of(&id.to_string()),
                    layer: diff_id.to_string(),
                    problem: problem.to_owned(),
                });
            }
        }
        if repair {
            self.clear_tmp()?;
        }
        Ok(damage)
    }

    /// The id `reference` names, and the name it matched (None when it matched an id).
    fn resolve(
        &self,
        reference: &str,
        names: &Names,
    ) -> Result<(Digest, Option<String>), ImageError> {
        let not_found = || ImageError::NotFound {
            reference: reference.to_owned(),
            store: self.root.clone(),
        };
        let bad = |why| ImageError::BadReference {
            reference: reference.to_owned(),
            why,
        };
        if reference.is_empty() {
            return Err(bad("is empty"));
        }
        let normalized = reference::normalize(reference);
        if let Ok(name) = &normalized {
            if let Some(id) = names.names.get(name) {
                let id = Digest::parse(id).ok_or_else(|| ImageError::Malformed {
                    file: self.names_file().display().to_string(),
                    why: format!("{name:?} maps to {id:?}"),
                })?;
                return Ok((id, Some(name.clone())));
            }
            if let Some((_, digest)) = name.split_once('@') {
                let digest = Digest::parse(digest)
                    .ok_or_else(|| bad("has a digest that is not sha256:<64 hex digits>"))?;
                for id in self.ids()? {
                    let record = self.read_record(&id)?;
                    if id == digest || record.manifest.as_deref() == Some(&digest.to_string()) {
                        return Ok((id, None));
                    }
                }
                return Err(not_found());
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() >= 4
            && hex.len() <= 64
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let matches: Vec<Digest> = self
                .ids()?
                .into_iter()
                .filter(|id| id.hex().starts_with(hex))
                .collect();
            return match matches.len() {
                0 => Err(not_found()),
                1 => Ok((matches.into_iter().next().unwrap(), None)),
                _ => Err(ImageError::Ambiguous {
                    reference: reference.to_owned(),
                    matches: matches.iter().map(|d| d.to_string()).collect(),
                }),
            };
        }
        match normalized {
            Ok(_) => Err(not_found()),
            Err(why) => Err(bad(why)),
        }
    }

    /// Loads every image of the archive or layout at `path`.
    pub fn load(
        &self,
        path: &Path,
        options: LoadOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<LoadReport, ImageError> {
        self.init()?;
        let _lock = self.lock()?;
        self.clear_tmp()?;
        let result = self
            .load_locked(path, options, progress)
            .map_err(|e| ImageError::In {
                archive: path.to_owned(),
                source: Box::new(e),
            });
        if result.is_err() {
            // All or nothing: layers this load added for images it did not commit go again.
            let _ = self.gc();
        }
        let cleared = self.clear_tmp();
        let report = result?;
        cleared?;
        Ok(report)
    }

    fn load_locked(
        &self,
        path: &Path,
        options: LoadOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<LoadReport, ImageError> {
        let keep = options.keep_setuid;
        let source = Source::open(path, &self.tmp().join("archive.tar"))?;
        let (plans, mut notes) = archive::read_images(&source)?;
        for plan in &plans {
            let c = &plan.parsed.config;
            if c.os != "linux" || c.architecture != super::host_arch() {
                let name = plan
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| plan.id.to_string());
                notes.push(format!(
                    "{name} is built for {}/{}, this host is linux/{}",
                    c.os,
                    c.architecture,
                    super::host_arch()
                ));
            }
        }
        // Every blob is located before anything is written: a missing one fails the load early.
        let mut sizes = Vec::new();
        for layer in plans.iter().flat_map(|p| &p.layers) {
            let (_, size) = source.open_blob(&layer.name)?;
            if let Some(expected) = layer.size {
                if expected != size {
                    return Err(ImageError::Size {
                        blob: layer.name.clone(),
                        expected,
                        actual: size,
                    });
                }
            }
            sizes.push(size);
        }
        let total: u64 = sizes.iter().sum();
        let layers = sizes.len() as u32;
        let (mut added, mut reused, mut done, mut index) = (0u32, 0u32, 0u64, 0u32);
        for plan in &plans {
            for layer in &plan.layers {
                let size = sizes[index as usize];
                let exists = self.layer_present(&layer.diff_id, keep);
                let mut report = |state: &'static str, bytes: u64| {
                    progress(&Progress {
                        state,
                        reused: exists,
                        layer: index,
                        layers,
                        diff_id: layer.diff_id.to_string(),
                        bytes,
                        size,
                        done: done + bytes,
                        total,
                    })
                };
                let state = if exists { "verifying" } else { "extracting" };
                report(state, 0);
                let mut tick = |bytes: u64| report(state, bytes);
                if exists {
                    self.read_layer(&source, layer, None, keep, &mut tick)?;
                    // What its first extraction changed still holds for what this image runs.
                    let stored = self.layer_meta(&layer.diff_id, keep).notes;
                    notes.extend(
                        stored
                            .into_iter()
                            .map(|n| format!("layer {} (already stored): {n}", layer.diff_id)),
                    );
                    reused += 1;
                } else {
                    let layer_notes = self.add_layer(&source, layer, keep, &mut tick)?;
                    notes.extend(
                        layer_notes
                            .into_iter()
                            .map(|n| format!("layer {}: {n}", layer.diff_id)),
                    );
                    added += 1;
                }
                report("done", size);
                done += size;
                index += 1;
            }
        }
        let mut names = self.read_names()?;
        for plan in &plans {
            self.commit(plan, keep, &mut names)?;
        }
        self.write_names(&names)?;
        let images = plans
            .iter()
            .map(|p| self.image(&p.id, &names))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LoadReport {
            images,
            layers_added: added,
            layers_reused: reused,
            notes,
        })
    }

    /// Extracts a new layer into tmp/, checks it, then moves it into place.
    fn add_layer(
        &self,
        source: &Source,
        layer: &LayerBlob,
        keep_setuid: bool,
        tick: &mut dyn FnMut(u64),
    ) -> Result<Vec<String>, ImageError> {
        let tmp = self.tmp().join(format!("layer-{}", layer.diff_id.hex()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|source| ImageError::Mkdir {
                path: tmp.clone(),
                source,
            })?;
        let (notes, size) = match self.read_layer(source, layer, Some(&tmp), keep_setuid, tick) {
            Ok((notes, size)) => (notes.unwrap_or_default(), size),
            Err(e) => {
                let _ = layer::remove_tree(&tmp);
                return Err(e);
            }
        };
        let dir = self.layer_dir(&layer.diff_id, keep_setuid);
        // A directory without its marker is damage (a deletion or a copy that did not finish).
        if dir.exists() {
            self.remove_away(&dir)?;
        }
        std::fs::rename(&tmp, &dir).map_err(|source| ImageError::Rename {
            from: tmp,
            to: dir,
            source,
        })?;
        let described = notes.describe();
        let meta = LayerMeta {
            diff_id: layer.diff_id.to_string(),
            size,
            notes: described.clone(),
        };
        write_atomic(
            &self.layer_meta_file(&layer.diff_id, keep_setuid),
            &serde_json::to_vec_pretty(&meta).expect("layer meta serialize"),
        )?;
        Ok(described)
    }

    /// Reads a layer's blob whole, checking its digest, its size and (when it is extracted to
    /// `into`, or when the archive gives no blob digest) its diff_id. After any failure the
    /// rest of the blob is still hashed, so that corruption is reported as such.
    /// Returns the extraction notes and the uncompressed size.
    fn read_layer(
        &self,
        source: &Source,
        layer: &LayerBlob,
        into: Option<&Path>,
        keep_setuid: bool,
        tick: &mut dyn FnMut(u64),
    ) -> Result<(Option<Notes>, u64), ImageError> {
        let (blob, size) = source.open_blob(&layer.name)?;
        let mut raw = HashingReader::new(ProgressReader::new(blob, PROGRESS_STEP, tick));
        let check_raw = |actual: Digest, bytes: u64| -> Result<(), ImageError> {
            if let Some(expected) = &layer.digest {
                if &actual != expected {
                    return Err(ImageError::Digest {
                        blob: layer.name.clone(),
                        expected: expected.clone(),
                        actual,
                    });
                }
            }
            if bytes != size {
                return Err(ImageError::Size {
                    blob: layer.name.clone(),
                    expected: size,
                    actual: bytes,
                });
            }
            Ok(())
        };
        let broken = |e: io::Error| ImageError::Layer {
            blob: layer.name.clone(),
            why: format!("reading: {e}"),
        };
        if into.is_none() && layer.digest.is_some() {
            raw.drain().map_err(broken)?;
            let (_, digest, bytes) = raw.into_parts();
            check_raw(digest, bytes)?;
            return Ok((None, 0));
        }
        let mut buffered = BufReader::with_capacity(1 << 20, raw);
        let decoder = match Decoder::new(&mut buffered) {
            Ok(d) => d,
            Err(e) => {
                let _ = io::copy(&mut buffered, &mut io::sink());
                let (_, digest, bytes) = buffered.into_inner().into_parts();
                check_raw(digest, bytes)?;
                return Err(broken(e));
            }
        };
        let compression = decoder.compression();
        let mut plain = HashingReader::new(decoder);
        let extracted = match into {
            Some(dir) => layer::extract(&mut plain, dir, &layer.name, keep_setuid).map(Some),
            None => Ok(None),
        };
        let drained = plain.drain();
        let (decoder, diff, plain_bytes) = plain.into_parts();
        let _ = decoder.into_inner();
        let rest = io::copy(&mut buffered, &mut io::sink());
        let (_, digest, bytes) = buffered.into_inner().into_parts();
        check_raw(digest, bytes)?;
        let notes = extracted?;
        drained.map_err(|e| ImageError::Layer {
            blob: layer.name.clone(),
            why: format!("{compression:?} stream: {e}"),
        })?;
        rest.map_err(broken)?;
        if diff != layer.diff_id {
            return Err(ImageError::DiffId {
                blob: layer.name.clone(),
                expected: layer.diff_id.clone(),
                actual: diff,
            });
        }
        Ok((notes, plain_bytes))
    }

    /// Stores an image's config, manifest and record, and points its names at it.
    fn commit(
        &self,
        plan: &ImagePlan,
        keep_setuid: bool,
        names: &mut Names,
    ) -> Result<(), ImageError> {
        let config_file = self.blob_file(&plan.id);
        if !config_file.exists() {
            write_atomic(&config_file, &plan.config)?;
        }
        if let Some((digest, bytes)) = &plan.manifest {
            let file = self.blob_file(digest);
            if !file.exists() {
                write_atomic(&file, bytes)?;
            }
        }
        let record = Record {
            id: plan.id.to_string(),
            manifest: plan.manifest.as_ref().map(|(d, _)| d.to_string()),
            layers: plan.parsed.diff_ids.iter().map(|d| d.to_string()).collect(),
            loaded: now(),
            keep_setuid,
        };
        write_atomic(
            &self.record_file(&plan.id),
            &serde_json::to_vec_pretty(&record).expect("record serialize"),
        )?;
        for name in &plan.names {
            names.names.insert(name.clone(), plan.id.to_string());
        }
        Ok(())
    }

    /// Removes a name; the image goes when no name is left or when `reference` is its id.
    /// Then layers and blobs no image uses are deleted.
    pub fn remove(&self, reference: &str, force: bool) -> Result<Removed, ImageError> {
        if !self.root.join("names.json").exists() && !self.root.join("images").exists() {
            return Err(ImageError::NotFound {
                reference: reference.to_owned(),
                store: self.root.clone(),
            });
        }
        let _lock = self.lock()?;
        let mut names = self.read_names()?;
        let (id, by_name) = self.resolve(reference, &names)?;
        let id_text = id.to_string();
        let mut removed = Removed {
            untagged: Vec::new(),
            deleted: Vec::new(),
            layers_removed: 0,
        };
        let last_name = match &by_name {
            Some(name) => !names.names.iter().any(|(k, v)| *v == id_text && k != name),
            None => true,
        };
        if last_name {
            // Lock held: no image container starts from this store until the layers are gone.
            self.check_leases(reference, &id, force)?;
        }
        match by_name {
            Some(name) => {
                names.names.remove(&name);
                removed.untagged.push(name);
            }
            None => {
                for name in names.of(&id_text) {
                    names.names.remove(&name);
                    removed.untagged.push(name);
                }
            }
        }
        self.write_names(&names)?;
        if !names.names.values().any(|v| *v == id_text) {
            let record = self.record_file(&id);
            std::fs::remove_file(&record).map_err(|source| ImageError::Remove {
                path: record,
                source,
            })?;
            removed.deleted.push(id_text);
        }
        removed.layers_removed = self.gc()?;
        Ok(removed)
    }

    /// The containers that use image `id` (their directories record it): a running one (its
    /// lease, an flock, is held) refuses the removal, a kept one (`keep: true`) unless `force`.
    fn check_leases(&self, reference: &str, id: &Digest, force: bool) -> Result<(), ImageError> {
        let Ok(entries) = std::fs::read_dir(self.root.join("containers")) else {
            return Ok(());
        };
        let short = id.hex()[..12].to_owned();
        for entry in entries.flatten() {
            let dir = entry.path();
            let recorded = std::fs::read_to_string(dir.join("image")).unwrap_or_default();
            if recorded.trim() != id.to_string() {
                continue;
            }
            let container = entry.file_name().to_string_lossy().into_owned();
            if lease_held(&dir.join("lock")) {
                return Err(ImageError::InUse {
                    id: short,
                    container,
                });
            }
            if !force && dir.join("kept").exists() {
                return Err(ImageError::KeptBy {
                    reference: reference.to_owned(),
                    id: short,
                    container,
                });
            }
        }
        Ok(())
    }

    /// Deletes layers and blobs that no image record uses. Lock held.
    fn gc(&self) -> Result<u32, ImageError> {
        // `sub/hex`: a layer kept with setuid bits is not the same one as without them.
        let mut used: HashSet<String> = HashSet::new();
        for id in self.ids()? {
            // A record that cannot be read stops the collection: its layers might be in use.
            let record = self.read_record(&id)?;
            used.insert(format!("blobs/sha256/{}", id.hex()));
            used.extend(
                record
                    .manifest
                    .as_deref()
                    .and_then(Digest::parse)
                    .map(|d| format!("blobs/sha256/{}", d.hex())),
            );
            let layers = Self::layers_sub(record.keep_setuid);
            used.extend(
                record
                    .layers
                    .iter()
                    .filter_map(|l| Digest::parse(l))
                    .map(|d| format!("{layers}/{}", d.hex())),
            );
        }
        let mut layers_removed = 0;
        for sub in [LAYERS, LAYERS_SETUID, "blobs/sha256"] {
            let dir = self.root.join(sub);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ImageError::Read { path: dir, source }),
            };
            let mut unused: Vec<(PathBuf, bool)> = entries
                .flatten()
                .filter(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let hex = name.strip_suffix(".json").unwrap_or(&name).to_owned();
                    !used.contains(&format!("{sub}/{hex}"))
                })
                .map(|e| (e.path(), e.file_type().map(|t| t.is_dir()).unwrap_or(false)))
                .collect();
            // Markers first: once its marker is gone a layer is absent, whatever is left of it.
            unused.sort_by_key(|(_, is_dir)| *is_dir);
            for (path, is_dir) in unused {
                if is_dir {
                    self.remove_away(&path)?;
                    if sub != "blobs/sha256" {
                        layers_removed += 1;
                    }
                } else {
                    std::fs::remove_file(&path).map_err(|source| ImageError::Remove {
                        path: path.clone(),
                        source,
                    })?;
                }
            }
        }
        Ok(layers_removed)
    }
}

/// Whether a container's lease is held: its process (or its monitor) has the lock's flock.
fn lease_held(lock: &Path) -> bool {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(lock)
    else {
        return false;
    };
    // Taken and released at once: only asked whether someone holds it.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}
