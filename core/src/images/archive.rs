//! Reading image archives: `docker save` archives (manifest.json), OCI image archives and
//! OCI image layout directories (index.json), as plain tar or gzip/zstd-compressed tar.
//! The result is a plan per image: its names, its verified config, and where each layer's
//! blob is with the digests it must have. Layers themselves are read later, by the store.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::config::{self, Parsed};
use super::{host_arch, reference, Digest, ImageError};

/// manifest.json, index.json, manifests and configs: far larger than any real one.
pub const JSON_LIMIT: u64 = 16 << 20;
const MAX_LINK_HOPS: usize = 16;
const MAX_INDEX_DEPTH: usize = 4;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Compression, from the first bytes (media types and file names are not trusted for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A decompressing reader that gives its source back, so that the rest of a blob can be
/// read (and hashed) after the tar stream inside it ended.
pub enum Decoder<R: BufRead> {
    Plain(R),
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decoder<R> {
    pub fn new(mut inner: R) -> io::Result<Self> {
        Ok(match Compression::detect(inner.fill_buf()?) {
            Compression::None => Decoder::Plain(inner),
            Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(inner)),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(inner)?),
        })
    }

    pub fn compression(&self) -> Compression {
        match self {
            Decoder::Plain(_) => Compression::None,
            Decoder::Gzip(_) => Compression::Gzip,
            Decoder::Zstd(_) => Compression::Zstd,
        }
    }

    pub fn into_inner(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

enum Item {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink or hardlink, as the archive-relative path it points to.
    Link(String),
}

enum Kind {
    Dir(PathBuf),
    Tar {
        file: File,
        items: HashMap<String, Item>,
    },
}

/// An archive or layout directory, opened for reading blobs by their archive-relative path.
pub struct Source {
    pub path: PathBuf,
    kind: Kind,
}

/// A byte range of the archive file.
pub struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// `a/./b//c` -> `a/b/c`; None for `..` or an absolute path (which can never name a blob).
pub fn clean(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Where a symlink at `at` pointing to `target` lands, inside the archive, if it does.
fn resolve_link(at: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        at.split('/').collect()
    };
    if !target.starts_with('/') {
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

impl Source {
    /// Opens `path`: a directory, or a tar file (compressed ones are first decompressed
    /// into `scratch`, a file of the store's tmp directory, to allow random access).
    pub fn open(path: &Path, scratch: &Path) -> Result<Source, ImageError> {
        let meta = std::fs::metadata(path).map_err(|source| ImageError::Open {
            path: path.to_owned(),
            source,
        })?;
        if meta.is_dir() {
            return Ok(Source {
                path: path.to_owned(),
                kind: Kind::Dir(path.to_owned()),
            });
        }
        if !meta.is_file() {
            return Err(ImageError::NotAnImage {
                why: "it is neither a regular file nor a directory (a seekable archive is needed)"
                    .into(),
            });
        }
        let mut file = open_regular(path).map_err(|source| ImageError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut head = [0u8; 4];
        let n = file
            .read_at(&mut head, 0)
            .map_err(|source| ImageError::Read {
                path: path.to_owned(),
                source,
            })?;
        if Compression::detect(&head[..n]) != Compression::None {
            let mut out = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(scratch)
                .map_err(|source| ImageError::Open {
                    path: scratch.to_owned(),
                    source,
                })?;
            let mut dec = Decoder::new(BufReader::with_capacity(1 << 18, &file))
                .map_err(|source| ImageError::Archive { source })?;
            io::copy(&mut dec, &mut out).map_err(|source| ImageError::Archive { source })?;
            file = out;
        }
        let items = index(&file)?;
        Ok(Source {
            path: path.to_owned(),
            kind: Kind::Tar { file, items },
        })
    }

    /// Follows links inside a tar archive to the file they name.
    fn locate(&self, name: &str) -> Option<(u64, u64)> {
        let Kind::Tar { items, .. } = &self.kind else {
            return None;
        };
        let mut name = name.to_owned();
        for _ in 0..MAX_LINK_HOPS {
            match items.get(&name)? {
                Item::File { offset, size } => return Some((*offset, *size)),
                Item::Link(target) => name = target.clone(),
            }
        }
        None
    }

    /// The path that `name` resolves to after links (for digest-named files behind a link).
    pub fn canonical(&self, name: &str) -> String {
        match &self.kind {
            Kind::Dir(root) => std::fs::canonicalize(root.join(name))
                .ok()
                .and_then(|p| {
                    Some(
                        p.strip_prefix(std::fs::canonicalize(root).ok()?)
                            .ok()?
                            .to_string_lossy()
                            .into_owned(),
                    )
                })
                .unwrap_or_else(|| name.to_owned()),
            Kind::Tar { items, .. } => {
                let mut name = name.to_owned();
                for _ in 0..MAX_LINK_HOPS {
                    match items.get(&name) {
                        Some(Item::Link(target)) => name = target.clone(),
                        _ => break,
                    }
                }
                name
            }
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        match &self.kind {
            Kind::Dir(root) => root.join(name).is_file(),
            Kind::Tar { .. } => self.locate(name).is_some(),
        }
    }

    /// A reader over the file `name` (archive-relative, already cleaned) and its size.
    pub fn open_blob(&self, name: &str) -> Result<(Box<dyn Read + '_>, u64), ImageError> {
        let missing = || ImageError::MissingBlob {
            blob: name.to_owned(),
        };
        match &self.kind {
            Kind::Dir(root) => {
                let path = root.join(name);
                let file = open_regular(&path).map_err(|source| match source.kind() {
                    io::ErrorKind::NotFound => missing(),
                    _ => ImageError::Open {
                        path: path.clone(),
                        source,
                    },
                })?;
                let meta = file.metadata().map_err(|source| ImageError::Read {
                    path: path.clone(),
                    source,
                })?;
                if !meta.is_file() {
                    return Err(ImageError::Malformed {
                        file: name.to_owned(),
                        why: "is not a regular file".into(),
                    });
                }
                Ok((Box::new(file), meta.len()))
            }
            Kind::Tar { file, .. } => {
                let (offset, size) = self.locate(name).ok_or_else(missing)?;
                Ok((
                    Box::new(Section {
                        file,
                        pos: offset,
                        end: offset + size,
                    }),
                    size,
                ))
            }
        }
    }

    /// A whole small file (JSON), refused past `limit` bytes.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
        let (mut reader, size) = self.open_blob(name)?;
        if size > limit {
            return Err(ImageError::TooLarge {
                file: name.to_owned(),
                limit,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        reader
            .by_ref()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|source| ImageError::Read {
                path: self.path.join(name),
                source,
            })?;
        if out.len() as u64 > limit {
            return Err(ImageError::TooLarge {
                file: name.to_owned(),
                limit,
            });
        }
        Ok(out)
    }

    /// A blob named by `digest` under blobs/, checked against it (and its size, if known).
    pub fn read_blob(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>, ImageError> {
        let name = blob_path(digest);
        let bytes = self.read_small(&name, JSON_LIMIT)?;
        check(&name, &bytes, Some(digest), size)?;
        Ok(bytes)
    }
}

/// Opens without blocking on a FIFO planted where a file should be (and without ever
/// becoming the controlling terminal); the caller checks that it is a regular file.
fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn check(
    name: &str,
    bytes: &[u8],
    digest: Option<&Digest>,
    size: Option<u64>,
) -> Result<(), ImageError> {
    if let Some(expected) = digest {
        let actual = Digest::of(bytes);
        if &actual != expected {
            return Err(ImageError::Digest {
                blob: name.to_owned(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    if let Some(expected) = size {
        if bytes.len() as u64 != expected {
            return Err(ImageError::Size {
                blob: name.to_owned(),
                expected,
                actual: bytes.len() as u64,
            });
        }
    }
    Ok(())
}

/// Every file and link of the archive by cleaned path, with its data's place in the file.
fn index(file: &File) -> Result<HashMap<String, Item>, ImageError> {
    let len = file
        .metadata()
        .map_err(|source| ImageError::Archive { source })?
        .len();
    let mut reader = file;
    reader
        .rewind()
        .map_err(|source| ImageError::Archive { source })?;
    let mut archive = tar::Archive::new(reader);
    let mut items = HashMap::new();
    for entry in archive
        .entries_with_seek()
        .map_err(|source| ImageError::Archive { source })?
    {
        let entry = entry.map_err(|source| ImageError::Archive { source })?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(name) = clean(&raw) else { continue };
        let kind = entry.header().entry_type();
        let item = if kind.is_file() || kind == tar::EntryType::Continuous {
            let (offset, size) = (entry.raw_file_position(), entry.size());
            if offset.checked_add(size).is_none_or(|end| end > len) {
                return Err(ImageError::Truncated {
                    entry: raw,
                    offset,
                    size,
                    len,
                });
            }
            Item::File { offset, size }
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let resolved = if kind.is_symlink() {
                resolve_link(&name, &target)
            } else {
                clean(&target)
            };
            match resolved {
                Some(t) => Item::Link(t),
                None => continue,
            }
        } else {
            continue;
        };
        items.insert(name, item);
    }
    Ok(items)
}

/// One layer of an image: where its blob is and what it must hash to.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// Archive-relative path, for opening and for messages.
    pub name: String,
    /// The blob's own digest when the archive states one (OCI descriptors, digest-named files).
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    /// The uncompressed tar's digest, from the config: always checked, and the layer's name.
    pub diff_id: Digest,
}

/// An image found in an archive, config verified, layers not yet read.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    pub names: Vec<String>,
    /// sha256 of the config: the image id.
    pub id: Digest,
    pub config: Vec<u8>,
    pub parsed: Parsed,
    pub manifest: Option<(Digest, Vec<u8>)>,
    pub layers: Vec<LayerBlob>,
}

/// Finds every image in `source`. Notes tell what was skipped and why.
pub fn read_images(source: &Source) -> Result<(Vec<ImagePlan>, Vec<String>), ImageError> {
    let mut notes = Vec::new();
    let mut plans: Vec<ImagePlan> = Vec::new();
    if source.exists("manifest.json") {
        docker(source, &mut plans, &mut notes)?;
    } else if source.exists("index.json") {
        let bytes = source.read_small("index.json", JSON_LIMIT)?;
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                file: "index.json".into(),
                source,
            })?;
        for (i, desc) in index.manifests().iter().enumerate() {
            let at = format!("index.json: manifests[{i}]");
            if let Some(p) = desc.platform() {
                if p.os().to_string() != "linux" || p.architecture().to_string() != host_arch() {
                    notes.push(format!(
                        "{at}: skipped, its platform is {}/{}",
                        p.os(),
                        p.architecture()
                    ));
                    continue;
                }
            }
            let names = annotated_names(desc, &at, &mut notes);
            oci(source, desc, names, "index.json", 0, &mut plans, &mut notes)?;
        }
    } else {
        return Err(ImageError::NotAnImage {
            why: "it has neither manifest.json (docker save) nor index.json (OCI)".into(),
        });
    }
    if plans.is_empty() {
        let why = if notes.is_empty() {
            "it lists no image".to_owned()
        } else {
            format!("no image could be used ({})", notes.join("; "))
        };
        return Err(ImageError::NotAnImage { why });
    }
    Ok((plans, notes))
}

fn add(plans: &mut Vec<ImagePlan>, plan: ImagePlan) {
    match plans.iter_mut().find(|p| p.id == plan.id) {
        Some(p) => {
            for n in plan.names {
                if !p.names.contains(&n) {
                    p.names.push(n);
                }
            }
        }
        None => plans.push(plan),
    }
}

fn name_list(
    raw: impl IntoIterator<Item = String>,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for name in raw {
        match reference::normalize(&name) {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(why) => notes.push(format!("{at}: ignored the name {name:?}, which {why}")),
        }
    }
    out
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The digest a file is named by: `blobs/sha256/<hex>`, `<hex>.json`, `<hex>.tar`.
fn named_digest(name: &str) -> Option<Digest> {
    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex);
    }
    let stem = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".tar"))?;
    Digest::from_hex(stem)
}

fn docker(
    source: &Source,
    plans: &mut Vec<ImagePlan>,
    notes: &mut Vec<String>,
) -> Result<(), ImageError> {
    let file = "manifest.json";
    let bytes = source.read_small(file, JSON_LIMIT)?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            file: file.into(),
            source,
        })?;
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("{file}: [{i}]");
        let bad = |what: &str, p: &str| ImageError::Malformed {
            file: file.into(),
            why: format!("[{i}].{what} {p:?} is not a path inside the archive"),
        };
        let config_name = clean(&entry.config).ok_or_else(|| bad("Config", &entry.config))?;
        let config = source.read_small(&config_name, JSON_LIMIT)?;
        check(
            &config_name,
            &config,
            named_digest(&source.canonical(&config_name)).as_ref(),
            None,
        )?;
        let parsed = config::parse(&config, &config_name)?;
        if parsed.diff_ids.len() != entry.layers.len() {
            return Err(ImageError::Malformed {
                file: file.into(),
                why: format!(
                    "[{i}] lists {} layers, its config `{config_name}` has {} diff_ids",
                    entry.layers.len(),
                    parsed.diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (layer, diff_id) in entry.layers.iter().zip(&parsed.diff_ids) {
            let name = clean(layer).ok_or_else(|| bad("Layers", layer))?;
            let digest = named_digest(&source.canonical(&name));
            layers.push(LayerBlob {
                name,
                digest,
                size: None,
                diff_id: diff_id.clone(),
            });
        }
        let names = name_list(entry.repo_tags.unwrap_or_default(), &at, notes);
        let id = Digest::of(&config);
        add(
            plans,
            ImagePlan {
                names,
                id,
                config,
                parsed,
                manifest: None,
                layers,
            },
        );
    }
    Ok(())
}

fn annotated_names(desc: &Descriptor, at: &str, notes: &mut Vec<String>) -> Vec<String> {
    let Some(a) = desc.annotations() else {
        return Vec::new();
    };
    // containerd's full name when present (docker 25+ archives), else the OCI ref name.
    let raw = a
        .get("io.containerd.image.name")
        .or_else(|| a.get("org.opencontainers.image.ref.name"));
    name_list(raw.cloned(), at, notes)
}

fn descriptor_digest(desc: &Descriptor, file: &str) -> Result<Digest, ImageError> {
    let text = desc.digest().to_string();
    Digest::parse(&text).ok_or_else(|| ImageError::Unsupported {
        file: file.into(),
        what: format!("the digest {text:?} (only sha256)"),
    })
}

fn oci(
    source: &Source,
    desc: &Descriptor,
    names: Vec<String>,
    file: &str,
    depth: usize,
    plans: &mut Vec<ImagePlan>,
    notes: &mut Vec<String>,
) -> Result<(), ImageError> {
    let digest = descriptor_digest(desc, file)?;
    let media = desc.media_type().to_string();
    let blob = blob_path(&digest);
    match media.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            if depth >= MAX_INDEX_DEPTH {
                return Err(ImageError::Malformed {
                    file: blob,
                    why: "indexes nested too deep".into(),
                });
            }
            let bytes = source.read_blob(&digest, Some(desc.size()))?;
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                    file: blob.clone(),
                    source,
                })?;
            let mut available = Vec::new();
            for child in index.manifests() {
                let Some(p) = child.platform() else { continue };
                let (os, arch) = (p.os().to_string(), p.architecture().to_string());
                if os == "linux" && arch == host_arch() {
                    return oci(source, child, names, &blob, depth + 1, plans, notes);
                }
                available.push(format!("{os}/{arch}"));
            }
            Err(ImageError::Platform {
                file: blob,
                wanted: format!("linux/{}", host_arch()),
                available: available.join(", "),
            })
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let bytes = source.read_blob(&digest, Some(desc.size()))?;
            let manifest: ImageManifest =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                    file: blob.clone(),
                    source,
                })?;
            let cdesc = manifest.config();
            let ctype = cdesc.media_type().to_string();
            if ctype != OCI_CONFIG && ctype != DOCKER_CONFIG {
                notes.push(format!(
                    "{file}: skipped `{blob}`, an artifact of type {ctype}, not a container image"
                ));
                return Ok(());
            }
            let cdigest = descriptor_digest(cdesc, &blob)?;
            let config = source.read_blob(&cdigest, Some(cdesc.size()))?;
            let parsed = config::parse(&config, &blob_path(&cdigest))?;
            if parsed.diff_ids.len() != manifest.layers().len() {
                return Err(ImageError::Malformed {
                    file: blob,
                    why: format!(
                        "lists {} layers, its config has {} diff_ids",
                        manifest.layers().len(),
                        parsed.diff_ids.len()
                    ),
                });
            }
            let mut layers = Vec::new();
            for (l, diff_id) in manifest.layers().iter().zip(&parsed.diff_ids) {
                let lmedia = l.media_type().to_string();
                if lmedia.contains("encrypted") {
                    return Err(ImageError::Unsupported {
                        file: blob,
                        what: format!("the encrypted layer type {lmedia}"),
                    });
                }
                let ldigest = descriptor_digest(l, &blob)?;
                let name = blob_path(&ldigest);
                if l.urls().is_some() && !source.exists(&name) {
                    return Err(ImageError::Unsupported {
                        file: blob,
                        what: format!(
                            "the foreign layer {ldigest} (not in the archive, only at a URL)"
                        ),
                    });
                }
                layers.push(LayerBlob {
                    name,
                    digest: Some(ldigest),
                    size: Some(l.size()),
                    diff_id: diff_id.clone(),
                });
            }
            if let Some(p) = desc.platform() {
                if p.architecture().to_string() != parsed.config.architecture {
                    notes.push(format!(
                        "{file}: `{blob}` is listed for {} but its config says {}",
                        p.architecture(),
                        parsed.config.architecture
                    ));
                }
            }
            let id = Digest::of(&config);
            add(
                plans,
                ImagePlan {
                    names,
                    id,
                    config,
                    parsed,
                    manifest: Some((digest, bytes)),
                    layers,
                },
            );
            Ok(())
        }
        other => {
            notes.push(format!("{file}: skipped `{blob}` of type {other}"));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_archive_clean_refuses_escapes() {
        assert_eq!(clean("./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(clean("blobs/sha256/x").as_deref(), Some("blobs/sha256/x"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
        assert_eq!(clean("/etc/passwd"), None);
        assert_eq!(clean("."), None);
    }

    #[test]
    fn images_archive_links_resolve_inside() {
        assert_eq!(
            resolve_link("abc/layer.tar", "../def.tar").as_deref(),
            Some("def.tar")
        );
        assert_eq!(
            resolve_link("abc/layer.tar", "/def.tar").as_deref(),
            Some("def.tar")
        );
        assert_eq!(resolve_link("abc/layer.tar", "../../x"), None);
    }

    #[test]
    fn images_archive_named_digests() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(named_digest(&format!("{hex}.json")).is_some());
        assert!(named_digest(&format!("{hex}.tar")).is_some());
        assert!(named_digest(&format!("blobs/sha256/{hex}")).is_some());
        assert!(named_digest(&format!("{hex}/layer.tar")).is_none());
    }
}
