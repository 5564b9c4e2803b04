//! `ca-file`: the CA certificates TLS health checks verify servers against, read once at
//! load, before any chroot, as HAProxy does. A PEM file (its CERTIFICATE blocks; keys and
//! CRLs are skipped), a directory (its `.pem`, `.crt` and `.cer` files, dot files skipped),
//! or `@system-ca` (the system's CA directory). Only the reading and the parsing live here:
//! validation (`validate.rs`) resolves the path against `ca-base` and reports, the health
//! thread (`health/tls.rs`) builds the root stores.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::model::CaFile;
use crate::health::os_reason;

/// HAProxy's name for the system's CA directory.
pub const SYSTEM_CA: &str = "@system-ca";

/// The largest CA file read: a bundle of every public CA is about 200 KiB. A mistaken path
/// (a device, a log) must not hold the load up.
const MAX_SIZE: u64 = 16 << 20;

/// The path a `ca-file` value names: `@system-ca` is `$SSL_CERT_DIR` or OpenSSL's default
/// directory; a relative path is taken in `ca_base` when set (HAProxy's rule), else as is.
pub fn resolve(value: &str, ca_base: Option<&Path>) -> PathBuf {
    if value == SYSTEM_CA {
        if let Some(dir) = std::env::var_os("SSL_CERT_DIR") {
            return PathBuf::from(dir);
        }
        return ["/usr/lib/ssl/certs", "/etc/ssl/certs", "/etc/pki/tls/certs"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_dir())
            .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs"));
    }
    match ca_base {
        Some(base) if !value.starts_with('/') => base.join(value),
        _ => PathBuf::from(value),
    }
}

/// Reads the CA certificates at `path`. Ok carries the file and the warnings to show
/// (certificates that cannot serve as a CA, an empty directory); Err says why nothing could
/// be read, in HAProxy's words where it has some.
pub fn load(path: &Path) -> Result<(CaFile, Vec<String>), String> {
    let shown = path.display();
    let mut warnings = Vec::new();
    let mut certs = Vec::new();
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| cannot_open(path, os_reason(&e)))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
                !name.starts_with('.')
                    && [".pem", ".crt", ".cer"].iter().any(|x| name.ends_with(x))
                    && p.is_file()
            })
            .collect();
        files.sort();
        for f in files {
            // A file of the directory that cannot be read or parsed is skipped, as OpenSSL
            // skips it.
            match read_pem(&f) {
                Ok(found) => certs.extend(found),
                Err(e) => warnings.push(e),
            }
        }
        if certs.is_empty() {
            warnings.push(format!("ca-file: 0 CA were loaded from '{shown}'"));
        }
    } else {
        certs = read_pem(path)?;
        if certs.is_empty() {
            return Err(cannot_open(path, "no certificate found"));
        }
    }
    // Keep what can anchor a chain; say what cannot.
    let mut store = rustls::RootCertStore::empty();
    let mut usable = Vec::with_capacity(certs.len());
    let mut refused = 0;
    for der in certs {
        match store.add(der.clone()) {
            Ok(()) => usable.push(der.to_vec()),
            Err(_) => refused += 1,
        }
    }
    if refused > 0 {
        warnings.push(format!(
            "ca-file '{shown}': {refused} certificate(s) cannot be used as a CA and are skipped"
        ));
    }
    if usable.is_empty() && !path.is_dir() {
        return Err(cannot_open(path, "no usable CA certificate"));
    }
    Ok((
        CaFile {
            path: path.to_path_buf(),
            certs: usable,
        },
        warnings,
    ))
}

/// The CERTIFICATE blocks of a PEM file (a regular file of at most [`MAX_SIZE`] bytes).
fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| cannot_open(path, os_reason(&e)))?;
    if !meta.is_file() || meta.len() > MAX_SIZE {
        return Err(cannot_open(path, "not a regular file of at most 16 MiB"));
    }
    let bytes = std::fs::read(path).map_err(|e| cannot_open(path, os_reason(&e)))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("couldn't read the ca-file '{}' ({e})", path.display()))
}

/// HAProxy's words for a ca-file that could not be read, and why.
fn cannot_open(path: &Path, why: impl std::fmt::Display) -> String {
    format!("couldn't open the ca-file '{}' ({why})", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../health/testdata/ca.pem");
    const OTHER: &str = include_str!("../health/testdata/other-ca.pem");
    const KEY: &str = include_str!("../health/testdata/check.test.key");

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-cafile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn paths_follow_ca_base() {
        let base = Path::new("/etc/ssl/certs");
        assert_eq!(resolve("ca.pem", Some(base)), base.join("ca.pem"));
        assert_eq!(resolve("/k8s/ca.crt", Some(base)), Path::new("/k8s/ca.crt"));
        assert_eq!(resolve("ca.pem", None), Path::new("ca.pem"));
        assert_ne!(resolve(SYSTEM_CA, Some(base)), base.join(SYSTEM_CA));
    }

    #[test]
    fn files_and_directories() {
        let d = temp_dir("load");
        // Two CAs and a key in one file: the key is skipped.
        let bundle = d.join("bundle.pem");
        std::fs::write(&bundle, format!("{CA}{KEY}{OTHER}")).unwrap();
        let (ca, warnings) = load(&bundle).unwrap();
        assert_eq!((ca.certs.len(), warnings.len()), (2, 0));

        let e = load(&d.join("missing.pem")).unwrap_err();
        assert_eq!(
            e,
            format!(
                "couldn't open the ca-file '{}' (No such file or directory)",
                d.join("missing.pem").display()
            )
        );
        let keys = d.join("key.pem");
        std::fs::write(&keys, KEY).unwrap();
        assert!(load(&keys).unwrap_err().ends_with("(no certificate found)"));
        // A device is not read (it could be endless).
        assert!(load(Path::new("/dev/zero"))
            .unwrap_err()
            .ends_with("(not a regular file of at most 16 MiB)"));

        // A directory: .pem/.crt/.cer files, not dot files nor others.
        let dir = d.join("cas");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.crt"), CA).unwrap();
        std::fs::write(dir.join(".hidden.pem"), OTHER).unwrap();
        std::fs::write(dir.join("b.txt"), OTHER).unwrap();
        let (ca, warnings) = load(&dir).unwrap();
        assert_eq!((ca.certs.len(), warnings.len()), (1, 0));
        let empty = d.join("empty");
        std::fs::create_dir(&empty).unwrap();
        let (ca, warnings) = load(&empty).unwrap();
        assert!(ca.certs.is_empty());
        assert_eq!(
            warnings,
            [format!(
                "ca-file: 0 CA were loaded from '{}'",
                empty.display()
            )]
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
