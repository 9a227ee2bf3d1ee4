//! A paging proxy for tag lists, std threads only. The distribution registry
//! (2.8, Debian's docker-registry) sends a whole tag list at once whatever `n`
//! asks; this proxy serves `GET /v2/<name>/tags/list` from the upstream's full
//! list in pages of its own size (it ignores `n`, as Docker Hub and Quay may),
//! sorted, with a relative `Link: </v2/<name>/tags/list?n=N&last=T>; rel="next"`.
//! Every other request is forwarded unchanged, one request per connection
//! (`Connection: close`): enough for manifest reads and `docker pull`.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub struct TagPager {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    page: usize,
    /// Page sizes for some repositories (`lib/app`), instead of `page`.
    pages: Mutex<HashMap<String, usize>>,
    /// Tag-list requests served, by repository.
    served: Mutex<HashMap<String, usize>>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TagPager {
    /// In front of the plain-HTTP registry at `upstream` (`127.0.0.1:PORT`), pages of `page` tags.
    pub fn start(upstream: &str, page: usize) -> TagPager {
        let listener = TcpListener::bind("127.0.0.1:0").expect("tag pager: bind");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            page,
            pages: Mutex::new(HashMap::new()),
            served: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let s = s.clone();
                thread::spawn(move || {
                    let _ = serve(&s, client);
                });
            }
        });
        TagPager { addr, shared, acceptor: Some(acceptor) }
    }

    /// `127.0.0.1:PORT`: use it as the registry in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Pages of `n` tags for repository `repo` (e.g. `lib/app`).
    pub fn page_size(&self, repo: &str, n: usize) {
        lock(&self.shared.pages).insert(repo.to_string(), n);
    }

    /// Tag-list pages served for `repo`.
    pub fn tag_list_requests(&self, repo: &str) -> usize {
        lock(&self.shared.served).get(repo).copied().unwrap_or(0)
    }
}

impl Drop for TagPager {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn serve(s: &Shared, client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    // docker tries HTTPS first: a TLS hello gets a plain-HTTP answer, which
    // tells it to fall back to HTTP (as the registry itself would).
    let mut first = [0u8; 1];
    if client.peek(&mut first)? == 1 && first[0] == 0x16 {
        let mut c = client;
        c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        let _ = c.shutdown(Shutdown::Both);
        return Ok(());
    }
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let end = line == "\r\n" || line == "\n";
        head.push(line);
        if end || head.len() > 200 {
            break;
        }
    }
    let request_line: Vec<&str> = head[0].split_whitespace().collect();
    let (method, target) = (request_line.first().copied().unwrap_or(""), request_line.get(1).copied().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method == "GET" {
        if let Some(name) = path.strip_prefix("/v2/").and_then(|p| p.strip_suffix("/tags/list")) {
            let last = query.split('&').find_map(|kv| kv.strip_prefix("last=")).map(str::to_string);
            return tag_page(s, client, name, last.as_deref());
        }
    }
    // Anything else: forward as it is, asking the upstream to close after it.
    let mut upstream = TcpStream::connect(&s.upstream)?;
    let mut length = 0usize;
    let mut out = String::new();
    for line in &head {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" || line == "\n" {
            out.push_str("Connection: close\r\n");
        }
        out.push_str(line);
    }
    upstream.write_all(out.as_bytes())?;
    if length > 0 {
        io::copy(&mut (&mut reader).take(length as u64), &mut upstream)?;
    }
    let mut client_w = client;
    io::copy(&mut upstream, &mut client_w)?;
    let _ = client_w.shutdown(Shutdown::Both);
    Ok(())
}

fn tag_page(s: &Shared, mut client: TcpStream, name: &str, last: Option<&str>) -> io::Result<()> {
    *lock(&s.served).entry(name.to_string()).or_default() += 1;
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let mut resp = agent
        .get(format!("http://{}/v2/{name}/tags/list", s.upstream))
        .call()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(64 << 20).read_to_vec().map_err(|e| io::Error::other(e.to_string()))?;
    let mut link = String::new();
    let body = if status == 200 {
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(io::Error::other)?;
        let mut tags: Vec<String> = v["tags"].as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect()).unwrap_or_default();
        tags.sort();
        let page = lock(&s.pages).get(name).copied().unwrap_or(s.page).max(1);
        let start = last.map_or(0, |l| tags.partition_point(|t| t.as_str() <= l));
        let end = (start + page).min(tags.len());
        if end < tags.len() {
            link = format!("Link: </v2/{name}/tags/list?n={page}&last={}>; rel=\"next\"\r\n", tags[end - 1]);
        }
        serde_json::to_vec(&serde_json::json!({"name": name, "tags": &tags[start..end]})).unwrap()
    } else {
        body
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{link}Connection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes())?;
    client.write_all(&body)?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
