//! The image config (OCI image-spec `config.json`, the same document docker writes): what a
//! container of the image runs by default, and the diff_ids that name its layers.

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use super::{Digest, ImageError};

/// The parts of the config a runtime applies, as docker does: options override them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    /// Absent and empty differ: `[]` clears a base image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=value` strings, in order.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, resolved against the image's /etc/passwd at run time.
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    /// `80/tcp`..., sorted.
    pub exposed_ports: Vec<String>,
    /// Paths, sorted.
    pub volumes: Vec<String>,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub created: Option<String>,
}

/// A config as the loader needs it: the runtime part and the layers' uncompressed digests.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: ImageConfig,
    pub diff_ids: Vec<Digest>,
}

/// Parses a config blob; `file` names it in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, ImageError> {
    let oci: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            file: file.to_owned(),
            source,
        })?;
    if oci.rootfs().typ() != "layers" {
        return Err(ImageError::Malformed {
            file: file.to_owned(),
            why: format!(
                "rootfs.type is {:?}, expected \"layers\"",
                oci.rootfs().typ()
            ),
        });
    }
    let diff_ids = oci
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            Digest::parse(d).ok_or_else(|| ImageError::Malformed {
                file: file.to_owned(),
                why: format!("rootfs.diff_ids has {d:?}, expected sha256:<64 hex digits>"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = ImageConfig {
        architecture: oci.architecture().to_string(),
        os: oci.os().to_string(),
        variant: oci.variant().clone(),
        created: oci.created().clone(),
        ..Default::default()
    };
    if let Some(c) = oci.config() {
        config.entrypoint = c.entrypoint().clone();
        config.cmd = c.cmd().clone();
        config.env = c.env().clone().unwrap_or_default();
        config.working_dir = c.working_dir().clone().filter(|w| !w.is_empty());
        config.user = c.user().clone().filter(|u| !u.is_empty());
        config.labels = c.labels().clone().unwrap_or_default().into_iter().collect();
        config.stop_signal = c.stop_signal().clone().filter(|s| !s.is_empty());
        config.exposed_ports = c.exposed_ports().clone().unwrap_or_default();
        config.exposed_ports.sort();
        config.volumes = c.volumes().clone().unwrap_or_default();
        config.volumes.sort();
    }
    Ok(Parsed { config, diff_ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_config_docker_style() {
        // As `docker save` writes it: nulls, extra keys, Go-map ports and volumes.
        let json = br#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","docker_version":"24",
            "config":{"Hostname":"","User":"nobody","Env":["PATH=/bin","A=b"],"Cmd":["sh"],"Entrypoint":null,
            "WorkingDir":"/srv","Labels":null,"ExposedPorts":{"80/tcp":{},"53/udp":{}},"Volumes":{"/data":{}},"StopSignal":"SIGQUIT"},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created_by":"x","empty_layer":true}]}"#;
        let p = parse(json, "c.json").unwrap();
        assert_eq!(p.diff_ids.len(), 1);
        assert_eq!(p.config.user.as_deref(), Some("nobody"));
        assert_eq!(p.config.env, vec!["PATH=/bin", "A=b"]);
        assert_eq!(p.config.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(p.config.entrypoint, None);
        assert_eq!(p.config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(p.config.exposed_ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(p.config.volumes, vec!["/data"]);
        assert_eq!(p.config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(p.config.architecture, "amd64");
    }

    #[test]
    fn images_config_errors_name_the_file() {
        let e = parse(b"{not json", "blobs/sha256/abc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("blobs/sha256/abc"), "{e}");
        let bad = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:../../x"]}}"#;
        let e = parse(bad, "c.json").unwrap_err().to_string();
        assert!(e.contains("c.json") && e.contains("diff_ids"), "{e}");
    }
}
