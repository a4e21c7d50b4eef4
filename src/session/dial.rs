//! Outgoing connections over TCP, uTP or both. With both (the default) TCP goes first and uTP
//! follows after [`UTP_AFTER`], or at once if TCP fails, as rqbit does: the first to connect wins and
//! the other is dropped. `--no-tcp` or `--no-utp` leaves one.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::Notify;

use crate::net::Bind;
use crate::utp::either::AnyStream;
use crate::utp::Utp;

/// How long TCP has alone before uTP is tried too.
pub const UTP_AFTER: Duration = Duration::from_secs(1);

/// How this process dials peers (cheap to clone).
#[derive(Debug, Clone)]
pub struct Dialer {
    /// Where our TCP sockets come from.
    pub net: Bind,
    /// TCP on (`--no-tcp` turns it off).
    pub tcp: bool,
    /// uTP, when on and its socket is up.
    pub utp: Option<Utp>,
}

impl Dialer {
    /// A TCP-only dialer (no uTP socket).
    pub fn tcp_only(net: Bind) -> Dialer {
        Dialer {
            net,
            tcp: true,
            utp: None,
        }
    }

    /// Connects to `addr` within `timeout` over TCP alone (`utp` false) or uTP alone.
    pub async fn dial_only(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        utp: bool,
    ) -> std::io::Result<AnyStream> {
        let only = Dialer {
            net: self.net.clone(),
            tcp: !utp,
            utp: if utp { self.utp.clone() } else { None },
        };
        only.dial(addr, timeout).await
    }

    /// Connects to `addr` within `timeout` over whichever transport answers first.
    pub async fn dial(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<AnyStream> {
        let tcp_failed = Notify::new();
        let tcp = async {
            if !self.tcp {
                tcp_failed.notify_one();
                return Err(off("TCP is off (--no-tcp)"));
            }
            let r = tokio::time::timeout(timeout, crate::net::connect(&self.net, addr)).await;
            let r = r.unwrap_or_else(|_| Err(timed_out("connect timed out")));
            if r.is_err() {
                tcp_failed.notify_one();
            }
            r
        };
        let utp = async {
            let Some(utp) = &self.utp else {
                return Err(off("uTP is off"));
            };
            if self.tcp {
                tokio::select! {
                    _ = tokio::time::sleep(UTP_AFTER) => {}
                    _ = tcp_failed.notified() => {}
                }
            }
            utp.connect(addr, timeout).await
        };
        tokio::pin!(tcp, utp);
        let (mut tcp_err, mut utp_err) = (None, None);
        loop {
            tokio::select! {
                r = &mut tcp, if tcp_err.is_none() => match r {
                    Ok(s) => return Ok(AnyStream::Tcp(s)),
                    Err(e) => tcp_err = Some(e),
                },
                r = &mut utp, if utp_err.is_none() => match r {
                    Ok(s) => return Ok(AnyStream::Utp(s)),
                    Err(e) => utp_err = Some(e),
                },
            }
            if let (Some(t), Some(u)) = (&tcp_err, &utp_err) {
                // The more telling error: TCP's, unless TCP was off.
                let e = if self.tcp { t } else { u };
                return Err(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
    }
}

fn off(why: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, why)
}

fn timed_out(why: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, why)
}
