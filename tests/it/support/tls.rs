//! HTTPS for network tests: a certificate authority generated in the test (rcgen), written to a
//! PEM file for `SSL_CERT_FILE`, and a TLS front (rustls) on 127.0.0.1 that serves a plain HTTP
//! backend (`server::Server`, `python -m http.server`) over HTTPS with a certificate that CA
//! signed for `127.0.0.1` and `localhost`. Each connection carries one request: the backends
//! answer `Connection: close` (or HTTP/1.0), and the front relays until the backend closes.
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A test CA and a server certificate it signed; `pem()` is the CA's certificate file.
pub struct TestCa {
    dir: tempfile::TempDir,
    config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "odinw test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        TestCa {
            dir,
            config: Arc::new(config),
        }
    }

    /// The CA's certificate (PEM): what a client must trust.
    pub fn pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A folder holding only the CA's certificate, for `SSL_CERT_DIR`.
    pub fn pem_dir(&self) -> PathBuf {
        let d = self.dir.path().join("certs");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(self.pem(), d.join("odinw-test-ca.pem")).unwrap();
        d
    }
}

/// HTTPS on a free loopback port in front of the HTTP server at `backend` (`http://host:port`).
pub struct TlsFront {
    port: u16,
    handshakes: Arc<AtomicUsize>,
}

impl TlsFront {
    pub fn start(ca: &TestCa, backend: &str) -> Self {
        let backend = host_port(backend);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (config, count) = (ca.config.clone(), handshakes.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (config, backend, count) = (config.clone(), backend.clone(), count.clone());
                std::thread::spawn(move || {
                    let _ = relay(conn, config, &backend, &count);
                });
            }
        });
        TlsFront { port, handshakes }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Connections whose TLS handshake completed (a client that refused the certificate does not
    /// count).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

/// The backend's `host:port` from an `http://host:port` URL.
fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn relay(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    backend: &str,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    count.fetch_add(1, Ordering::SeqCst);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut back = TcpStream::connect(backend)?;
    back.set_read_timeout(Some(Duration::from_secs(30)))?;
    back.write_all(&head)?;
    loop {
        let n = back.read(&mut buf)?;
        if n == 0 {
            break;
        }
        tls.write_all(&buf[..n])?;
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}
