//! A tiny HTTP proxy on 127.0.0.1 for network tests: `CONNECT host:port` tunnels (what clients
//! use for HTTPS through `HTTPS_PROXY`) and absolute-form requests (`GET http://host:port/path`,
//! plain HTTP through `HTTP_PROXY`), each counted. It only reaches loopback addresses.
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Log {
    connects: Vec<String>,
    forwards: Vec<String>,
}

pub struct Proxy {
    port: u16,
    log: Arc<Mutex<Log>>,
}

impl Proxy {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = shared.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &log);
                });
            }
        });
        Proxy { port, log }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `host:port` of each CONNECT tunnel opened so far.
    pub fn connects(&self) -> Vec<String> {
        self.log.lock().unwrap().connects.clone()
    }

    /// The absolute URL of each plain request forwarded so far.
    pub fn forwards(&self) -> Vec<String> {
        self.log.lock().unwrap().forwards.clone()
    }
}

fn handle(client: TcpStream, log: &Mutex<Log>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let end = line == "\r\n" || line == "\n";
        head.push(line);
        if end {
            break;
        }
    }
    let mut parts = head[0].split_whitespace();
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("HTTP/1.1").to_string(),
    );
    let mut client = client;
    let (upstream, first) = if method == "CONNECT" {
        log.lock().unwrap().connects.push(target.clone());
        (target.clone(), None)
    } else if let Some(rest) = target.strip_prefix("http://") {
        log.lock().unwrap().forwards.push(target.clone());
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        (
            host.to_string(),
            Some(format!("{method} /{path} {version}\r\n")),
        )
    } else {
        client.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    if !(upstream.starts_with("127.0.0.1:") || upstream.starts_with("localhost:")) {
        client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    }
    let mut server = TcpStream::connect(&upstream)?;
    match first {
        None => client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?,
        Some(line) => {
            server.write_all(line.as_bytes())?;
            for h in &head[1..] {
                server.write_all(h.as_bytes())?;
            }
        }
    }
    // Bytes the reader buffered past the head, then both directions until either side closes.
    let buffered = reader.buffer().to_vec();
    server.write_all(&buffered)?;
    let (mut to_server, mut from_server) = (server.try_clone()?, server);
    let mut client_in = reader.into_inner();
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut from_server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.join();
    Ok(())
}
