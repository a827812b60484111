//! Image names as docker spells them: `alpine` means `alpine:latest`, and Docker Hub's
//! `docker.io/library/alpine:3.20` is the same image as `alpine:3.20`. Names are kept in
//! that short form, so every spelling of one name finds the same image.

/// `repo[:tag]` or `repo@sha256:...` in its short form, or why it is not a name.
pub fn normalize(name: &str) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > 4096 {
        return Err("is longer than 4096 bytes");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or a control character");
    }
    let (repo, suffix) = match name.split_once('@') {
        Some((repo, digest)) => (repo, format!("@{digest}")),
        None => match name.rfind(':') {
            // A `:` after the last `/` separates the tag; before it, it is a registry's port.
            Some(i) if !name[i..].contains('/') => (&name[..i], name[i..].to_owned()),
            _ => (name, ":latest".to_owned()),
        },
    };
    if repo.is_empty() || suffix.len() < 2 {
        return Err("has an empty repository or tag");
    }
    if repo.starts_with('/') || repo.ends_with('/') || repo.contains("//") {
        return Err("has an empty path component");
    }
    let repo = [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ]
    .iter()
    .find_map(|p| repo.strip_prefix(p))
    .unwrap_or(repo);
    if repo.is_empty() {
        return Err("has an empty repository");
    }
    Ok(format!("{repo}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn images_reference_short_forms() {
        assert_eq!(normalize("alpine").unwrap(), "alpine:latest");
        assert_eq!(normalize("alpine:3.20").unwrap(), "alpine:3.20");
        assert_eq!(
            normalize("docker.io/library/alpine:3.20").unwrap(),
            "alpine:3.20"
        );
        assert_eq!(normalize("docker.io/test/two:v1").unwrap(), "test/two:v1");
        assert_eq!(
            normalize("localhost:5000/x").unwrap(),
            "localhost:5000/x:latest"
        );
        assert_eq!(
            normalize("localhost:5000/x:1").unwrap(),
            "localhost:5000/x:1"
        );
        assert!(normalize("").is_err());
        assert!(normalize("a b").is_err());
        assert!(normalize("x:").is_err());
        assert!(normalize(":x").is_err());
    }
}
