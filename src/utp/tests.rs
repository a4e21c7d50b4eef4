//! uTP connections driven packet by packet: a scripted peer on a plain UDP socket speaks raw BEP 29
//! packets (built with [`super::packet`]) to our uTP socket on the shared port, and checks what comes
//! back: the SYN answered, data in order, reordered and duplicate packets, a selective ACK, the
//! receive window filling, retransmission of an unacknowledged packet, FIN and RESET.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::packet::{Header, Kind};
use super::Utp;
use crate::udp::{Sinks, UdpPort};

const WAIT: Duration = Duration::from_secs(5);
/// Our (the scripted peer's) receive id; we send with `ID + 1`, as an initiator does.
const ID: u16 = 0x1234;
const SEQ: u16 = 100;

struct Raw {
    sock: UdpSocket,
    to: SocketAddr,
}

impl Raw {
    async fn send(&self, mut h: Header, payload: &[u8]) {
        h.wnd_size = 1 << 20;
        let mut out = Vec::new();
        h.encode(&mut out);
        out.extend_from_slice(payload);
        self.sock.send_to(&out, self.to).await.unwrap();
    }

    /// The next packet from our socket, with its payload.
    async fn recv(&self) -> (Header, Vec<u8>) {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(WAIT, self.sock.recv_from(&mut buf))
            .await
            .expect("a packet in time")
            .unwrap();
        let (h, at) = Header::parse(&buf[..n]).expect("a uTP packet");
        (h, buf[at..n].to_vec())
    }

    /// Packets until one of `kind` arrives.
    async fn until(&self, kind: Kind) -> (Header, Vec<u8>) {
        for _ in 0..100 {
            let p = self.recv().await;
            if p.0.kind == kind {
                return p;
            }
        }
        panic!("no {kind:?} in 100 packets");
    }

    fn data(&self, seq: u16, ack: u16) -> Header {
        Header::new(Kind::Data, ID + 1, seq, ack)
    }
}

/// Our uTP socket on a fresh loopback port, a scripted peer, and the accepted stream after the SYN
/// (whose answer is returned: its `seq_nr` is the responder's next sequence number, so the peer
/// acknowledges `seq_nr - 1`, as libutp does).
async fn connected() -> (Raw, librqbit_utp::UtpStream, Header, Utp) {
    let net = crate::net::Bind {
        ip: Some(Ipv4Addr::LOCALHOST.into()),
        ..Default::default()
    };
    let port = UdpPort::bind(&net, 0).await.unwrap();
    let (utp, [v4, _]) = Utp::start(&port).unwrap();
    port.demux(
        false,
        Sinks {
            krpc: None,
            utp: v4,
        },
    );
    let raw = Raw {
        sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        to: SocketAddr::from((Ipv4Addr::LOCALHOST, port.port())),
    };
    let accept = tokio::spawn(async move {
        let s = utp.accept(false).await;
        (s, utp)
    });
    raw.send(Header::new(Kind::Syn, ID, SEQ, 0), &[]).await;
    let (state, _) = raw.until(Kind::State).await;
    assert_eq!(
        state.conn_id, ID,
        "the answer to a SYN carries the initiator's id"
    );
    assert_eq!(state.ack_nr, SEQ, "and acknowledges the SYN");
    let (stream, utp) = tokio::time::timeout(WAIT, accept).await.unwrap().unwrap();
    (raw, stream.expect("accepted"), state, utp)
}

async fn read_exactly(stream: &mut librqbit_utp::UtpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("data in time")
        .unwrap();
    buf
}

#[tokio::test]
async fn in_order_reordered_and_duplicate_data_and_a_selective_ack() {
    let (raw, mut stream, state, _utp) = connected().await;
    let ours = state.seq_nr.wrapping_sub(1);
    raw.send(raw.data(SEQ + 1, ours), b"abc").await;
    assert_eq!(read_exactly(&mut stream, 3).await, b"abc");
    let (ack, _) = raw.until(Kind::State).await;
    assert_eq!(ack.ack_nr, SEQ + 1);
    // SEQ+3 before SEQ+2: acknowledged selectively, held back from the stream.
    raw.send(raw.data(SEQ + 3, ours), b"ghi").await;
    let (ack, _) = raw.until(Kind::State).await;
    assert_eq!(ack.ack_nr, SEQ + 1, "the gap is not acknowledged");
    assert_eq!(
        ack.sacked(),
        [SEQ + 3],
        "the packet past it is, selectively"
    );
    raw.send(raw.data(SEQ + 2, ours), b"def").await;
    assert_eq!(read_exactly(&mut stream, 6).await, b"defghi", "in order");
    let (ack, _) = raw.until(Kind::State).await;
    assert_eq!(ack.ack_nr, SEQ + 3);
    // A duplicate adds nothing to the stream; it is acknowledged again.
    raw.send(raw.data(SEQ + 2, ours), b"def").await;
    let (ack, _) = raw.until(Kind::State).await;
    assert_eq!(ack.ack_nr, SEQ + 3);
    raw.send(raw.data(SEQ + 4, ours), b"j").await;
    assert_eq!(
        read_exactly(&mut stream, 1).await,
        b"j",
        "nothing duplicated before it"
    );
}

#[tokio::test]
async fn unacknowledged_data_is_sent_again_and_an_ack_stops_it() {
    let (raw, mut stream, state, _utp) = connected().await;
    // The peer's ACK of the SYN-ACK establishes the connection.
    let syn_ack = state.seq_nr.wrapping_sub(1);
    raw.send(Header::new(Kind::State, ID + 1, SEQ, syn_ack), &[])
        .await;
    // (No flush: it would wait for the ACK this test withholds.)
    stream.write_all(b"hello").await.unwrap();
    let (first, payload) = raw.until(Kind::Data).await;
    assert_eq!(payload, b"hello");
    assert_eq!(
        first.seq_nr, state.seq_nr,
        "data starts at the SYN-ACK's number"
    );
    // No ACK (the packet was "lost"): the same packet comes again.
    let (again, payload) = raw.until(Kind::Data).await;
    assert_eq!((again.seq_nr, &payload[..]), (first.seq_nr, &b"hello"[..]));
    // Acknowledged: no more copies.
    raw.send(Header::new(Kind::State, ID + 1, SEQ, first.seq_nr), &[])
        .await;
    let mut buf = vec![0u8; 2048];
    let quiet = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let (n, _) = raw.sock.recv_from(&mut buf).await.unwrap();
            if let Some((h, _)) = Header::parse(&buf[..n]) {
                if h.kind == Kind::Data {
                    return h;
                }
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "retransmitted after its ACK: {quiet:?}");
}

#[tokio::test]
async fn the_receive_window_shrinks_as_unread_data_piles_up() {
    let (raw, mut stream, state, _utp) = connected().await;
    let ours = state.seq_nr.wrapping_sub(1);
    let chunk = vec![7u8; 1000];
    let mut last_wnd = u32::MAX;
    for k in 1..=200u16 {
        raw.send(raw.data(SEQ + k, ours), &chunk).await;
        if k % 50 == 0 {
            let (ack, _) = raw.until(Kind::State).await;
            assert!(
                ack.wnd_size < last_wnd,
                "window {} after {k} KB",
                ack.wnd_size
            );
            last_wnd = ack.wnd_size;
        }
    }
    assert!(
        u64::from(last_wnd) <= (super::RX_WINDOW - 150_000) as u64,
        "{last_wnd}"
    );
    // Read it all: every byte is there, in order.
    let all = read_exactly(&mut stream, 200 * 1000).await;
    assert!(all.iter().all(|&b| b == 7));
}

#[tokio::test]
async fn fin_ends_the_stream_and_reset_breaks_it() {
    let (raw, mut stream, state, _utp) = connected().await;
    let ours = state.seq_nr.wrapping_sub(1);
    raw.send(raw.data(SEQ + 1, ours), b"last").await;
    raw.send(Header::new(Kind::Fin, ID + 1, SEQ + 2, ours), &[])
        .await;
    let mut got = Vec::new();
    let n = tokio::time::timeout(WAIT, stream.read_to_end(&mut got))
        .await
        .expect("end of stream in time");
    assert!(n.is_ok(), "{n:?}");
    assert_eq!(got, b"last", "data before the FIN, then the end");

    let (raw, mut stream, _, _utp) = connected().await;
    raw.send(Header::new(Kind::Reset, ID + 1, SEQ + 1, 0), &[])
        .await;
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("the reset noticed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}

#[tokio::test]
async fn junk_and_unknown_connections_do_not_disturb_a_live_one() {
    let (raw, mut stream, state, _utp) = connected().await;
    let ours = state.seq_nr.wrapping_sub(1);
    // Garbage with a uTP-looking first byte, and data for a connection that does not exist.
    raw.sock.send_to(&[0x01; 20], raw.to).await.unwrap();
    raw.send(Header::new(Kind::Data, 999, 1, 1), b"nobody")
        .await;
    raw.send(raw.data(SEQ + 1, ours), b"still here").await;
    assert_eq!(read_exactly(&mut stream, 10).await, b"still here");
}
