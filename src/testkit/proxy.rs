//! A fault-injecting HTTP proxy on 127.0.0.1 in front of a local service (moto, the simulator):
//! it forwards each request and can lose the answer of a request after the service applied it,
//! or stall a request forever (accept it and never answer). Requests are matched by a
//! substring of the request head, e.g. the `X-Amz-Target` value `DynamoDB_20120810.UpdateItem`.
//!
//! Each client connection carries one request: the proxy asks the service to close after its
//! answer and the client sees `Connection: close`, so request boundaries need no HTTP parsing
//! beyond the head and `Content-Length`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFault {
    /// The request reaches the service and is applied; its answer is dropped and the client's
    /// connection closed, as when a reply is lost in the network.
    LoseAnswer,
    /// The request is accepted and read, never forwarded, never answered.
    Stall,
}

#[derive(Debug)]
struct Rule {
    matching: String,
    fault: ProxyFault,
    /// Matching requests let through before the fault applies.
    skip: u32,
    /// Matching requests the fault applies to after that; `u32::MAX` for all of them.
    times: u32,
    /// The rule waits until this many requests containing the text arrived.
    armed_by: Option<(String, usize)>,
}

#[derive(Debug, Default)]
struct Rules {
    rules: Vec<Rule>,
    /// The faults applied so far, with the matching text of their rule.
    applied: Vec<(String, ProxyFault)>,
    /// Every request head seen, in order of arrival.
    heads: Vec<String>,
}

impl Rules {
    fn fault_for(&mut self, head: &str) -> Option<ProxyFault> {
        self.heads.push(head.to_owned());
        let heads = &self.heads;
        let armed = |rule: &Rule| {
            rule.armed_by.as_ref().is_none_or(|(text, count)| {
                heads.iter().filter(|h| h.contains(text.as_str())).count() >= *count
            })
        };
        let rule = self
            .rules
            .iter_mut()
            .find(|rule| rule.times > 0 && head.contains(&rule.matching) && armed(rule))?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        if rule.times != u32::MAX {
            rule.times -= 1;
        }
        let (matching, fault) = (rule.matching.clone(), rule.fault);
        self.applied.push((matching, fault));
        Some(fault)
    }
}

/// The proxy; it stops (and drops every open connection) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    rules: Arc<Mutex<Rules>>,
    _tasks: JoinSet<()>,
}

impl FaultProxy {
    /// A proxy for the service at `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://127.0.0.1:PORT");
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("proxy address");
        let rules = Arc::new(Mutex::new(Rules::default()));
        let mut tasks = JoinSet::new();
        let shared = Arc::clone(&rules);
        tasks.spawn(async move {
            // Connections live in this set, so dropping the proxy ends them all.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let rules = Arc::clone(&shared);
                connections.spawn(async move {
                    let _ = serve(client, upstream, rules).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        FaultProxy {
            addr,
            rules,
            _tasks: tasks,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to `times` requests whose head contains `matching`, after letting
    /// `skip` such requests through.
    pub fn inject(&self, matching: &str, fault: ProxyFault, skip: u32, times: u32) {
        self.lock().rules.push(Rule {
            matching: matching.to_owned(),
            fault,
            skip,
            times,
            armed_by: None,
        });
    }

    /// Stalls every request whose head contains `matching` once `count` requests containing
    /// `after` arrived: a fault tied to the progress of another service (Kinesis stalls once
    /// the first checkpoint was written), whatever number of calls came before.
    pub fn stall_after(&self, after: &str, count: usize, matching: &str) {
        self.lock().rules.push(Rule {
            matching: matching.to_owned(),
            fault: ProxyFault::Stall,
            skip: 0,
            times: u32::MAX,
            armed_by: Some((after.to_owned(), count)),
        });
    }

    /// Stalls every later request whose head contains `matching`.
    pub fn stall_all(&self, matching: &str) {
        self.inject(matching, ProxyFault::Stall, 0, u32::MAX);
    }

    /// Forwards everything again (requests already stalled stay stalled).
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// The faults applied so far, each with the rule's matching text.
    pub fn applied(&self) -> Vec<(String, ProxyFault)> {
        self.lock().applied.clone()
    }

    /// How many requests whose head contains `matching` arrived so far (since the last
    /// [`FaultProxy::take_heads`]).
    pub fn seen(&self, matching: &str) -> usize {
        let rules = self.lock();
        rules.heads.iter().filter(|h| h.contains(matching)).count()
    }

    /// The heads of every request that arrived since the last call, in order of arrival, and
    /// forgets them (so a long run does not keep them all).
    pub fn take_heads(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().heads)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    rules: Arc<Mutex<Rules>>,
) -> std::io::Result<()> {
    let Some((head, body)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let fault = rules
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .fault_for(&head);
    if fault == Some(ProxyFault::Stall) {
        // Hold the connection open, answering nothing, until the proxy is dropped.
        std::future::pending::<()>().await;
    }
    let mut service = TcpStream::connect(upstream).await?;
    service
        .write_all(close_after_answer(&head).as_bytes())
        .await?;
    service.write_all(&body).await?;
    let mut answer = Vec::new();
    service.read_to_end(&mut answer).await?;
    if fault == Some(ProxyFault::LoseAnswer) {
        // Applied by the service; the client only sees its connection close.
        return Ok(());
    }
    client.write_all(&answer).await?;
    client.shutdown().await
}

/// The request head (up to and including the blank line) and its body.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = content_length(&head);
    while buffer.len() < head_end + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, buffer[head_end..].to_vec())))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The head with `Connection: close`, so the service ends the answer by closing.
fn close_after_answer(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| {
            !line
                .split_once(':')
                .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}
