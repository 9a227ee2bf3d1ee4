//! A fault-injecting TCP proxy for end-to-end tests, std threads only.
//!
//! It sits in front of a plain-HTTP registry and spoils the first K HTTP
//! requests (503, 429 or a TCP reset), then forwards transparently. Requests
//! are counted on keep-alive connections too, by framing them (headers, then a
//! Content-Length or chunked body). A faulted request is always the first on its
//! connection: a fault closes the connection, and once the K faults are spent
//! no connection gets one again.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `503 Service Unavailable`, then close.
    Status503,
    /// `429 Too Many Requests` with Docker Hub's TOOMANYREQUESTS body, then close.
    Status429,
    /// Read the request, then reset the connection (RST, not FIN).
    Reset,
    /// Forward everything, but wait this long before connecting upstream and
    /// before each chunk in either direction. Applies to every connection;
    /// `first_k` is ignored and `faults_served` stays 0.
    Latency(Duration),
}

pub const RATE_LIMIT_BODY: &str = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#;

/// Longest request head accepted; past it the connection is forwarded unparsed.
const MAX_HEAD: usize = 64 * 1024;
const CHUNK: usize = 64 * 1024;

pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    fault: Fault,
    first_k: usize,
    requests: AtomicUsize,
    faults: AtomicUsize,
    stop: AtomicBool,
    next_id: AtomicU64,
    /// Every open socket, so Drop can shut them down and unblock their threads.
    open: Mutex<HashMap<u64, Vec<TcpStream>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Answers some requests itself (by request line), forwarding the rest:
    /// e.g. a Harbor projects API beside a real registry.
    intercept: Option<Intercept>,
}

/// Request line (`HEAD /api/... HTTP/1.1`) -> the whole response to send instead, if any.
pub type Intercept = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl FaultProxy {
    /// Listens on 127.0.0.1 at a free port. Panics if it cannot: this is test setup.
    pub fn start(upstream: SocketAddr, fault: Fault, first_k: usize) -> FaultProxy {
        Self::start_with(upstream, fault, first_k, None)
    }

    /// Forwards to `upstream`, except requests `intercept` answers (no faults).
    pub fn intercepting(upstream: SocketAddr, intercept: Intercept) -> FaultProxy {
        Self::start_with(upstream, Fault::Latency(Duration::ZERO), 0, Some(intercept))
    }

    fn start_with(upstream: SocketAddr, fault: Fault, first_k: usize, intercept: Option<Intercept>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault proxy: local_addr");
        let shared = Arc::new(Shared {
            upstream,
            fault,
            first_k,
            requests: AtomicUsize::new(0),
            faults: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            workers: Mutex::new(Vec::new()),
            intercept,
        });
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, s))
            .expect("fault proxy: spawn");
        FaultProxy { addr, shared, acceptor: Some(acceptor) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// HTTP requests seen, faulted or forwarded (non-HTTP connections are not counted).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn faults_served(&self) -> usize {
        self.shared.faults.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the stop flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for streams in lock(&self.shared.open).values() {
            for s in streams {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for w in workers {
            let _ = w.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking worker must not wedge Drop.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = conn else { continue };
        let s = shared.clone();
        let w = thread::spawn(move || Conn::new(s).serve(client));
        let mut workers = lock(&shared.workers);
        workers.retain(|w| !w.is_finished());
        workers.push(w);
    }
}

/// One client connection and, once needed, its upstream twin.
struct Conn {
    shared: Arc<Shared>,
    id: u64,
    delay: Option<Duration>,
}

impl Conn {
    fn new(shared: Arc<Shared>) -> Self {
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let delay = match shared.fault {
            Fault::Latency(d) => Some(d),
            _ => None,
        };
        Conn { shared, id, delay }
    }

    fn serve(self, client: TcpStream) {
        if !self.track(&client) {
            return;
        }
        if self.faults_left() {
            if let Some(head_len) = self.peek_head(&client) {
                if self.claim_fault() {
                    self.shared.requests.fetch_add(1, Ordering::SeqCst);
                    self.serve_fault(client, head_len);
                    self.untrack();
                    return;
                }
            }
        }
        let _ = self.forward(client);
        self.untrack();
    }

    /// Registers a socket for Drop; false (and the socket shut) if the proxy is stopping.
    fn track(&self, s: &TcpStream) -> bool {
        let mut open = lock(&self.shared.open);
        if self.shared.stop.load(Ordering::SeqCst) {
            let _ = s.shutdown(Shutdown::Both);
            return false;
        }
        if let Ok(c) = s.try_clone() {
            open.entry(self.id).or_default().push(c);
        }
        true
    }

    fn untrack(&self) {
        lock(&self.shared.open).remove(&self.id);
    }

    fn faults_left(&self) -> bool {
        self.delay.is_none() && self.shared.faults.load(Ordering::SeqCst) < self.shared.first_k
    }

    fn claim_fault(&self) -> bool {
        let k = self.shared.first_k;
        self.delay.is_none()
            && self.shared.faults.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < k).then_some(n + 1)).is_ok()
    }

    /// Waits, without consuming, until a whole HTTP request head has arrived; returns its length.
    /// Unread bytes are what makes the kernel answer `close` with RST (see `serve_fault`).
    /// None: not HTTP (e.g. a TLS probe), closed, or too slow: forward it instead.
    fn peek_head(&self, client: &TcpStream) -> Option<usize> {
        let mut buf = vec![0; MAX_HEAD];
        let deadline = Instant::now() + Duration::from_secs(10);
        let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
        let found = loop {
            if self.shared.stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                break None;
            }
            match client.peek(&mut buf) {
                Ok(0) => break None,
                Ok(_) if !buf[0].is_ascii_uppercase() => break None,
                Ok(n) => match find(&buf[..n], b"\r\n\r\n") {
                    Some(i) => break Some(i + 4),
                    None if n == buf.len() => break None,
                    // peek returns at once while data waits; pause before looking again.
                    None => thread::sleep(Duration::from_millis(2)),
                },
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => break None,
            }
        };
        let _ = client.set_read_timeout(None);
        found
    }

    fn serve_fault(&self, mut client: TcpStream, head_len: usize) {
        let (status, content_type, body) = match self.shared.fault {
            Fault::Status503 => ("503 Service Unavailable", "text/plain; charset=utf-8", "service unavailable\n"),
            Fault::Status429 => ("429 Too Many Requests", "application/json", RATE_LIMIT_BODY),
            // Closing a socket whose received data is unread makes Linux send RST
            // (RFC 2525 2.17): the same effect as SO_LINGER 0, without unsafe code or a crate.
            Fault::Reset | Fault::Latency(_) => {
                self.untrack(); // its clone would keep the socket open
                return drop(client);
            }
        };
        let mut head = vec![0; head_len];
        if client.read_exact(&mut head).is_err() {
            return;
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        // Read the body too: closing on unread bytes would turn this answer into a reset.
        if !header_is(&head, "expect", "100-continue") {
            let mut reader = BufReader::new(&client);
            if copy_body(&head, &mut reader, &mut io::sink(), None).is_err() {
                return;
            }
        }
        let is_head = head.starts_with("HEAD ");
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Docker-Distribution-Api-Version: registry/2.0\r\nConnection: close\r\n\r\n{}",
            body.len(),
            if is_head { "" } else { body }
        );
        if client.write_all(response.as_bytes()).is_err() {
            return;
        }
        // Half-close, then let the client close first so our close cannot reset what it has not read.
        let _ = client.shutdown(Shutdown::Write);
        let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = io::copy(&mut client, &mut io::sink());
    }

    /// Transparent forwarding: requests are framed (to count them), responses copied raw.
    fn forward(&self, client: TcpStream) -> io::Result<()> {
        if let Some(d) = self.delay {
            thread::sleep(d);
        }
        let upstream = TcpStream::connect(self.shared.upstream)?;
        if !self.track(&upstream) {
            return Ok(());
        }
        let (mut up_read, mut client_write) = (upstream.try_clone()?, client.try_clone()?);
        let delay = self.delay;
        let responses = thread::spawn(move || {
            let _ = copy_delayed(&mut up_read, &mut client_write, delay);
            let _ = client_write.shutdown(Shutdown::Write);
        });
        let mut reader = BufReader::with_capacity(CHUNK, client);
        let mut up_write = upstream;
        let _ = self.forward_requests(&mut reader, &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
        let _ = responses.join();
        Ok(())
    }

    fn forward_requests(&self, client: &mut BufReader<TcpStream>, up: &mut TcpStream) -> io::Result<()> {
        loop {
            let first = match client.fill_buf()? {
                [] => return Ok(()),
                b => b[0],
            };
            if !first.is_ascii_uppercase() {
                // Not HTTP (a TLS probe, an upgraded stream): pass it through uncounted.
                return copy_delayed(client, up, self.delay);
            }
            let head = match read_head(client)? {
                Head::Complete(head) => head,
                Head::TooLong(bytes) => {
                    up.write_all(&bytes)?;
                    return copy_delayed(client, up, self.delay);
                }
            };
            self.shared.requests.fetch_add(1, Ordering::SeqCst);
            let line = head.lines().next().unwrap_or("");
            if let Some(answer) = self.shared.intercept.as_ref().and_then(|i| i(line)) {
                // HTTP/1.1 clients do not pipeline: the previous answer is
                // through, so this one can go straight to the client.
                copy_body(&head, client, &mut io::sink(), None)?;
                client.get_mut().write_all(answer.as_bytes())?;
                continue;
            }
            self.pause();
            up.write_all(head.as_bytes())?;
            if header_is(&head, "connection", "upgrade") {
                return copy_delayed(client, up, self.delay);
            }
            copy_body(&head, client, up, self.delay)?;
        }
    }

    fn pause(&self) {
        if let Some(d) = self.delay {
            thread::sleep(d);
        }
    }
}

enum Head {
    Complete(String),
    /// Longer than MAX_HEAD: the bytes read so far, to forward raw.
    TooLong(Vec<u8>),
}

/// The request line and headers through the blank line.
fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        if head.len() >= MAX_HEAD {
            return Ok(Head::TooLong(head));
        }
        if r.by_ref().take((MAX_HEAD - before) as u64).read_until(b'\n', &mut head)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            return Ok(Head::Complete(String::from_utf8_lossy(&head).into_owned()));
        }
    }
}

/// Copies (or, into a sink, discards) the body the head announces: Content-Length or chunked.
fn copy_body(head: &str, r: &mut impl BufRead, w: &mut impl Write, delay: Option<Duration>) -> io::Result<()> {
    if header_is(head, "transfer-encoding", "chunked") {
        loop {
            let mut size_line = Vec::new();
            read_line(r, &mut size_line)?;
            w.write_all(&size_line)?;
            let text = String::from_utf8_lossy(&size_line);
            let hex = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(hex, 16).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, then the blank line that ends the body.
                loop {
                    let mut line = Vec::new();
                    read_line(r, &mut line)?;
                    w.write_all(&line)?;
                    if line == b"\r\n" || line == b"\n" {
                        return Ok(());
                    }
                }
            }
            copy_exact(r, w, size, delay)?;
            let mut crlf = Vec::new();
            read_line(r, &mut crlf)?;
            w.write_all(&crlf)?;
        }
    }
    let length = header(head, "content-length").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    copy_exact(r, w, length, delay)
}

fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<()> {
    if r.by_ref().take(MAX_HEAD as u64).read_until(b'\n', line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn copy_exact(r: &mut impl BufRead, w: &mut impl Write, mut n: u64, delay: Option<Duration>) -> io::Result<()> {
    while n > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let take = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        if let Some(d) = delay {
            thread::sleep(d);
        }
        w.write_all(&buf[..take])?;
        r.consume(take);
        n -= take as u64;
    }
    Ok(())
}

/// Raw copy until EOF, sleeping `delay` before each chunk.
fn copy_delayed(r: &mut impl Read, w: &mut impl Write, delay: Option<Duration>) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if let Some(d) = delay {
            thread::sleep(d);
        }
        w.write_all(&buf[..n])?;
    }
}

/// The value of the first header named `name` (case-insensitive).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Whether header `name` lists `token` (comma-separated, case-insensitive).
fn header_is(head: &str, name: &str, token: &str) -> bool {
    header(head, name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
