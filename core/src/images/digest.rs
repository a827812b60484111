//! sha256 digests: `sha256:<64 lowercase hex>` parsed strictly (a digest becomes a file
//! name in the store, so nothing else may pass), and readers that hash what flows through.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// A sha256 content address. Only the validated hex is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// `sha256:<64 hex>`, lowercase as the OCI spec requires. Anything else is None.
    pub fn parse(s: &str) -> Option<Digest> {
        Digest::from_hex(s.strip_prefix("sha256:")?)
    }

    /// The bare 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Digest> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Digest(hex.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::default();
        h.update(bytes);
        h.finish()
    }

    pub fn hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

/// An incremental sha256.
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let out = self.0.finalize();
        let mut s = String::with_capacity(64);
        for b in out.iter() {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        Digest(s)
    }
}

/// Hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::default(),
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reads whatever is left (so that the digest covers the whole stream).
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }

    pub fn into_parts(self) -> (R, Digest, u64) {
        (self.inner, self.hasher.finish(), self.bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Calls `tick(bytes read so far)` at most every `step` bytes, and once at the end.
pub struct ProgressReader<'a, R> {
    inner: R,
    bytes: u64,
    next: u64,
    step: u64,
    tick: &'a mut dyn FnMut(u64),
}

impl<'a, R: Read> ProgressReader<'a, R> {
    pub fn new(inner: R, step: u64, tick: &'a mut dyn FnMut(u64)) -> Self {
        ProgressReader {
            inner,
            bytes: 0,
            next: step,
            step,
            tick,
        }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if self.bytes >= self.next || (n == 0 && !buf.is_empty()) {
            self.next = self.bytes + self.step;
            (self.tick)(self.bytes);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_digest_parse_is_strict() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::parse(&format!("sha256:{hex}")).unwrap().hex(), hex);
        assert_eq!(Digest::of(b"").hex(), hex);
        assert!(Digest::parse(hex).is_none());
        assert!(Digest::parse(&format!("sha256:{}", hex.to_uppercase())).is_none());
        assert!(Digest::parse(&format!("sha256:{}", &hex[1..])).is_none());
        assert!(Digest::parse(
            "sha256:../../../../etc/passwd0000000000000000000000000000000000000000"
        )
        .is_none());
        assert!(Digest::parse(&format!("sha512:{hex}")).is_none());
    }

    #[test]
    fn images_digest_hashing_reader_counts_everything() {
        let mut r = HashingReader::new(&b"hello world"[..]);
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        r.drain().unwrap();
        let (_, d, n) = r.into_parts();
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(b"hello world"));
    }
}
