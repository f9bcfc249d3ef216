//! A small HTTP/1.1 server for download tests (std only): serves byte bodies by path, supports
//! `Range: bytes=N-[M]` and HEAD, logs every request, and injects faults per path: a status
//! code, a body cut short, a connection reset mid-stream, a stall, a throttled rate, a server
//! that ignores Range, an alternative body, a `Last-Modified` date instead of an `ETag`, a
//! wrong `Content-Length`. Faults queued with `push_fault` apply to the next
//! requests in order; `set_always` applies to every request. Each body is served with a strong
//! `ETag` derived from its bytes, and `If-Range` is honoured as RFC 9110 says (a validator
//! that does not match gets the whole body with 200).
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Announce the full length, send this many body bytes, close.
    Truncate(usize),
    /// Send this many body bytes, then reset the connection (RST).
    Reset(usize),
    /// Send this many body bytes, then pause for this long before the rest.
    Stall(usize, Duration),
    /// Send the body at about this many bytes per second.
    Throttle(usize),
    /// Ignore the Range header (answer 200 with the whole body).
    IgnoreRange,
    /// Answer 200 with this body instead (e.g. "export not ready yet").
    Body(Vec<u8>),
    /// Send no ETag (and so ignore If-Range, having nothing to compare it with).
    NoValidators,
    /// Send this `Last-Modified` date and no ETag; If-Range is compared with the date.
    LastModified(String),
    /// Announce this `Content-Length` on a 200 answer (HEAD too) whatever the body's length,
    /// send the body, close.
    AnnounceLength(usize),
}

#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    /// Path with its query string.
    pub target: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
}

#[derive(Default)]
struct Route {
    body: Arc<Vec<u8>>,
    headers: Vec<(String, String)>,
    queued: VecDeque<Fault>,
    always: Vec<Fault>,
}

#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    log: Mutex<Vec<Logged>>,
}

pub struct Server {
    port: u16,
    shared: Arc<Shared>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a local port");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &s);
                });
            }
        });
        Server { port, shared }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `body` at `target` (a path, optionally with a query string).
    pub fn add(&self, target: &str, body: Vec<u8>) {
        self.add_with_headers(target, body, vec![]);
    }

    pub fn add_with_headers(&self, target: &str, body: Vec<u8>, headers: Vec<(String, String)>) {
        let mut routes = self.shared.routes.lock().unwrap();
        let r = routes.entry(target.to_string()).or_default();
        r.body = Arc::new(body);
        r.headers = headers;
    }

    pub fn push_fault(&self, target: &str, fault: Fault) {
        let mut routes = self.shared.routes.lock().unwrap();
        routes
            .entry(target.to_string())
            .or_default()
            .queued
            .push_back(fault);
    }

    pub fn set_always(&self, target: &str, faults: Vec<Fault>) {
        let mut routes = self.shared.routes.lock().unwrap();
        routes.entry(target.to_string()).or_default().always = faults;
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests whose path (without query) is `path`.
    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(|l| l.target.split('?').next() == Some(path))
            .collect()
    }
}

fn handle(conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut range = None;
    let mut if_range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            } else if k.trim().eq_ignore_ascii_case("if-range") {
                if_range = Some(v.trim().to_string());
            }
        }
    }
    shared.log.lock().unwrap().push(Logged {
        method: method.clone(),
        target: target.clone(),
        range: range.clone(),
        if_range: if_range.clone(),
    });
    let found = {
        let mut routes = shared.routes.lock().unwrap();
        let path = target.split('?').next().unwrap_or("").to_string();
        let key = if routes.contains_key(&target) {
            target.clone()
        } else {
            path
        };
        routes.get_mut(&key).map(|r| {
            let mut faults = r.always.clone();
            if let Some(f) = r.queued.pop_front() {
                faults.push(f);
            }
            (r.body.clone(), r.headers.clone(), faults)
        })
    };
    let mut conn = conn;
    let Some((body, headers, faults)) = found else {
        return respond(&mut conn, 404, &[], b"not found", &method);
    };
    let mut body = body;
    let mut ignore_range = false;
    let mut validators = true;
    let mut last_modified = None;
    let mut announce = None;
    let (mut truncate, mut reset, mut stall, mut rate) = (None, None, None, None);
    for f in &faults {
        match f {
            Fault::Status(code) => return respond(&mut conn, *code, &[], b"", &method),
            Fault::Truncate(n) => truncate = Some(*n),
            Fault::Reset(n) => reset = Some(*n),
            Fault::Stall(n, d) => stall = Some((*n, *d)),
            Fault::Throttle(r) => rate = Some(*r),
            Fault::IgnoreRange => ignore_range = true,
            Fault::Body(b) => body = Arc::new(b.clone()),
            Fault::NoValidators => validators = false,
            Fault::LastModified(date) => {
                validators = false;
                last_modified = Some(date.clone());
            }
            Fault::AnnounceLength(n) => announce = Some(*n),
        }
    }
    let len = body.len();
    let mut status = 200;
    let mut extra: Vec<(String, String)> = headers;
    extra.push(("Accept-Ranges".into(), "bytes".into()));
    let etag = validators.then(|| etag_of(&body));
    if let Some(e) = &etag {
        extra.push(("ETag".into(), e.clone()));
    }
    if let Some(d) = &last_modified {
        extra.push(("Last-Modified".into(), d.clone()));
    }
    let validator = etag.or(last_modified);
    if if_range.is_some() && if_range != validator {
        ignore_range = true; // the client's copy is of another version: send it all
    }
    let mut start = 0;
    let mut end = len; // exclusive
    if let (Some(r), false) = (&range, ignore_range) {
        if let Some((a, b)) = r.strip_prefix("bytes=").and_then(|s| s.split_once('-')) {
            let a: usize = a.parse().unwrap_or(0);
            if a >= len {
                extra.push(("Content-Range".into(), format!("bytes */{len}")));
                return respond(&mut conn, 416, &extra, b"", &method);
            }
            let b: usize = b.parse().map(|b: usize| (b + 1).min(len)).unwrap_or(len);
            start = a;
            end = b;
            status = 206;
            extra.push((
                "Content-Range".into(),
                format!("bytes {a}-{}/{len}", end - 1),
            ));
        }
    }
    let slice = &body[start..end];
    let announced = match announce {
        Some(n) if status == 200 => n,
        _ => slice.len(),
    };
    write_head(&mut conn, status, &extra, announced)?;
    if method == "HEAD" {
        return Ok(());
    }
    let limit = truncate.or(reset).unwrap_or(slice.len()).min(slice.len());
    let chunk = 16 << 10;
    let mut sent = 0;
    while sent < limit {
        if let Some((at, d)) = stall {
            if sent >= at {
                std::thread::sleep(d);
                stall = None;
            }
        }
        let mut n = chunk.min(limit - sent);
        if let Some((at, _)) = stall {
            if sent < at {
                n = n.min(at - sent);
            }
        }
        conn.write_all(&slice[sent..sent + n])?;
        sent += n;
        if let Some(r) = rate {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / r as f64));
        }
    }
    conn.flush()?;
    if reset.is_some() {
        reset_connection(&conn);
    }
    Ok(())
}

/// A strong ETag for `body` (FNV-1a of its bytes and its length).
pub fn etag_of(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}-{}\"", body.len())
}

impl Server {
    /// Replaces the body served at `target`, keeping its faults (the file changed on the
    /// server).
    pub fn replace_body(&self, target: &str, body: Vec<u8>) {
        let mut routes = self.shared.routes.lock().unwrap();
        routes.entry(target.to_string()).or_default().body = Arc::new(body);
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_head(
    conn: &mut TcpStream,
    code: u16,
    headers: &[(String, String)],
    len: usize,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Length: {len}\r\nConnection: close\r\n",
        reason(code)
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())
}

fn respond(
    conn: &mut TcpStream,
    code: u16,
    headers: &[(String, String)],
    body: &[u8],
    method: &str,
) -> std::io::Result<()> {
    write_head(conn, code, headers, body.len())?;
    if method != "HEAD" {
        conn.write_all(body)?;
    }
    conn.flush()
}

/// Closes with RST instead of FIN (SO_LINGER with a zero timeout).
fn reset_connection(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = conn.shutdown(std::net::Shutdown::Read);
}
