//! The one place odinw builds its HTTP client (ONNX Runtime provisioning, `odinw download`, the
//! hub listing, RoboFlow), so every network path trusts and routes like pip, uv and curl:
//!
//! - certificates: the Mozilla roots built into odinw, plus the platform's trust store; when
//!   `SSL_CERT_FILE` (a PEM bundle) or `SSL_CERT_DIR` (folders of PEM files, `:`-separated) is
//!   set, those are read instead of the system store, as OpenSSL, curl and Python's `ssl` do;
//! - proxies: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (or their lowercase forms; the uppercase
//!   one wins when both are set) and `NO_PROXY` / `no_proxy` (hosts, domains, IPs or CIDR blocks
//!   that go direct; `*` for all);
//! - a refused certificate gets a message naming these variables ([`explain`]).
use anyhow::{bail, Context, Result};
use reqwest::blocking::Client;
use std::path::Path;
use std::time::Duration;

/// The client: `connect` bounds connecting, `total` each whole request.
pub fn client(connect: Duration, total: Duration) -> Result<Client> {
    check_cert_env()?;
    let mut builder = Client::builder();
    if no_proxy_for_all() {
        builder = builder.no_proxy();
    }
    builder
        .connect_timeout(connect)
        .timeout(total)
        .user_agent(concat!("odinw/", env!("CARGO_PKG_VERSION")))
        .tls_built_in_webpki_certs(true)
        .tls_built_in_native_certs(true)
        .build()
        .context("building the HTTP client")
}

/// Whether `NO_PROXY` (else `no_proxy`) lists `*`: every host goes direct, as with curl.
/// (reqwest reads the variable itself, but its `*` does not cover hosts written as IP addresses.)
fn no_proxy_for_all() -> bool {
    std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .is_ok_and(|v| v.split(',').any(|h| h.trim() == "*"))
}

/// `SSL_CERT_FILE` must name a file and each `SSL_CERT_DIR` entry a folder when set: otherwise
/// the system store would be skipped silently and every HTTPS request would fail later.
fn check_cert_env() -> Result<()> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        if !Path::new(&file).is_file() {
            bail!(
                "SSL_CERT_FILE={} is not a file: it should name a PEM bundle of the certificate \
                 authorities to trust (or unset it to use the system's trust store)",
                Path::new(&file).display()
            );
        }
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                bail!(
                    "SSL_CERT_DIR names {}, which is not a folder: it should list folders of PEM \
                     certificates to trust (or unset it to use the system's trust store)",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// Whether `err` (or an error it wraps) is a TLS certificate the client refused.
pub fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        // rustls' wording ("invalid peer certificate: UnknownIssuer"); io::Error shows its
        // inner error's text but does not list it as a source, hence the text check.
        if e.to_string().contains("invalid peer certificate") {
            return true;
        }
        next = e.source();
    }
    false
}

/// Adds the explanation to an error whose cause is a refused server certificate: what odinw
/// trusts and the environment variables that change it. Other errors are returned unchanged.
pub fn explain(err: anyhow::Error) -> anyhow::Error {
    if !err.chain().any(is_certificate_error) {
        return err;
    }
    let show = |v: &str| match std::env::var_os(v) {
        Some(s) if !s.is_empty() => format!("{v}={}", s.to_string_lossy()),
        _ => format!("{v} unset"),
    };
    let msg = format!(
        "the server's TLS certificate was refused: it is not signed by an authority odinw \
         trusts. odinw trusts the Mozilla roots built into it and the system's trust store, or \
         instead of the system store the certificates in SSL_CERT_FILE (a PEM bundle) and \
         SSL_CERT_DIR (folders of PEM files) when set (now: {}, {}). Behind a proxy or network \
         that inspects TLS with its own certificate authority, set SSL_CERT_FILE to a bundle \
         that holds it (the one pip and curl use); HTTPS_PROXY / HTTP_PROXY / NO_PROXY choose \
         the proxy",
        show("SSL_CERT_FILE"),
        show("SSL_CERT_DIR")
    );
    err.context(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Leaf(&'static str);
    impl std::fmt::Display for Leaf {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Leaf {}

    #[test]
    fn a_refused_certificate_deep_in_the_chain_is_explained() {
        let io = std::io::Error::other(Leaf("invalid peer certificate: UnknownIssuer"));
        let err = anyhow::Error::new(io).context("GET https://example.test/x");
        let text = format!("{:#}", explain(err));
        assert!(
            text.starts_with("the server's TLS certificate was refused"),
            "{text}"
        );
        for v in [
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "HTTPS_PROXY",
            "NO_PROXY",
            "UnknownIssuer",
        ] {
            assert!(text.contains(v), "{text}");
        }
    }

    #[test]
    fn other_errors_are_left_alone() {
        let err = anyhow::anyhow!("connection refused").context("GET http://127.0.0.1:9/");
        assert_eq!(
            format!("{:#}", explain(err)),
            "GET http://127.0.0.1:9/: connection refused"
        );
    }
}
