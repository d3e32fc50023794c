//! A TCP proxy a test owns, between the crawler and a real server (the
//! machine's PostgreSQL), that injects the faults a real network has: a
//! partition that forwards nothing and resets nothing (`blackhole`), a
//! server that refuses connections (`refuse`), and connections cut
//! (`cut`). Loopback only; each test starts its own.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FORWARD: u8 = 0;
const BLACKHOLE: u8 = 1;
const REFUSE: u8 = 2;

/// How often an idle pump or the accept loop looks at the mode.
const POLL: Duration = Duration::from_millis(20);

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    mode: AtomicU8,
    upstream: SocketAddr,
    /// Both ends of every connection made so far, to cut them.
    open: Mutex<Vec<TcpStream>>,
    /// `None` while refusing: nothing listens on the port.
    listener: Mutex<Option<TcpListener>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            mode: AtomicU8::new(FORWARD),
            upstream,
            open: Mutex::new(Vec::new()),
            listener: Mutex::new(Some(listener)),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || accept_loop(&accepting));
        Proxy { addr, shared }
    }

    /// From now on nothing is forwarded either way, and nothing is closed:
    /// a partition, or a failover that leaves connections hanging. Data
    /// already sent waits in the kernel's buffers.
    pub fn blackhole(&self) {
        self.shared.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Closes every connection and listens no more: new connections are
    /// refused, as by a server that is down.
    pub fn refuse(&self) {
        self.shared.mode.store(REFUSE, Ordering::SeqCst);
        *self.shared.listener.lock().unwrap() = None;
        self.cut();
    }

    /// Closes every connection made so far, both ends.
    pub fn cut(&self) {
        for s in self.shared.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Forwards again, listening on the same port. Connections from before
    /// a blackhole resume; cut them first for a network whose old
    /// connections did not survive.
    pub fn heal(&self) {
        let mut listener = self.shared.listener.lock().unwrap();
        if listener.is_none() {
            let l = TcpListener::bind(self.addr).expect("listen again on the proxy's port");
            l.set_nonblocking(true).expect("nonblocking");
            *listener = Some(l);
        }
        self.shared.mode.store(FORWARD, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.mode.store(REFUSE, Ordering::SeqCst);
        *self.shared.listener.lock().unwrap() = None;
        self.cut();
    }
}

fn accept_loop(shared: &Arc<Shared>) {
    // Ends once the proxy is dropped and its pumps have stopped: nothing
    // else holds `shared` then.
    while Arc::strong_count(shared) > 1 {
        let accepted = match &*shared.listener.lock().unwrap() {
            Some(l) => l.accept(),
            None => Err(ErrorKind::WouldBlock.into()),
        };
        match accepted {
            Ok((client, _)) => connect(shared, client),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn connect(shared: &Arc<Shared>, client: TcpStream) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(shared.upstream) else {
        return;
    };
    let mut open = shared.open.lock().unwrap();
    for (from, to) in [(&client, &server), (&server, &client)] {
        let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        let shared = shared.clone();
        std::thread::spawn(move || pump(&shared, from, to));
    }
    open.push(client);
    open.push(server);
}

/// Copies `from` to `to` while forwarding; while blackholed it reads
/// nothing, so the sender's data waits as it would in a partition.
fn pump(shared: &Shared, mut from: TcpStream, mut to: TcpStream) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = [0u8; 16 * 1024];
    loop {
        match shared.mode.load(Ordering::SeqCst) {
            BLACKHOLE => {
                std::thread::sleep(POLL);
                continue;
            }
            REFUSE => break,
            _ => {}
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
