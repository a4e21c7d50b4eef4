//! The uTP packet header (BEP 29), as pure encode/decode, and the first-byte rule that tells uTP
//! from KRPC on the UDP port the DHT and uTP share. The connection state machine is
//! `librqbit-utp`'s; this codec is what our demultiplexer and our packet-level tests need.

/// Bytes of a uTP header.
pub const HEADER_LEN: usize = 20;
/// The only uTP version (low nibble of the first byte).
pub const VERSION: u8 = 1;
/// Selective ACK extension (BEP 29).
pub const EXT_SACK: u8 = 1;

/// A uTP packet type (high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Payload.
    Data = 0,
    /// End of the stream.
    Fin = 1,
    /// An ACK with no payload.
    State = 2,
    /// Abort the connection.
    Reset = 3,
    /// Open a connection.
    Syn = 4,
}

impl Kind {
    fn from_nibble(n: u8) -> Option<Kind> {
        Some(match n {
            0 => Kind::Data,
            1 => Kind::Fin,
            2 => Kind::State,
            3 => Kind::Reset,
            4 => Kind::Syn,
            _ => return None,
        })
    }
}

/// What a datagram on the shared UDP port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram {
    /// KRPC, for the DHT: bencoded, so it starts with `d`.
    Krpc,
    /// uTP: version 1 in the low nibble, a known type in the high one, a whole header.
    Utp,
    /// Neither: dropped.
    Junk,
}

/// Classifies a datagram by its first byte (and length).
pub fn classify(datagram: &[u8]) -> Datagram {
    match datagram.first() {
        Some(b'd') => Datagram::Krpc,
        Some(&b)
            if datagram.len() >= HEADER_LEN
                && b & 0x0f == VERSION
                && Kind::from_nibble(b >> 4).is_some() =>
        {
            Datagram::Utp
        }
        _ => Datagram::Junk,
    }
}

/// A uTP header, with the selective ACK bitmask when the packet carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The packet type.
    pub kind: Kind,
    /// The receiving end's connection id.
    pub conn_id: u16,
    /// Sender's clock, microseconds.
    pub timestamp_us: u32,
    /// The sender's last measured one-way delay, microseconds.
    pub timestamp_diff_us: u32,
    /// The sender's receive window, bytes.
    pub wnd_size: u32,
    /// Sequence number.
    pub seq_nr: u16,
    /// Last sequence number received in order.
    pub ack_nr: u16,
    /// Selective ACK: bit `i` says `ack_nr + 2 + i` arrived.
    pub sack: Option<Vec<u8>>,
}

impl Header {
    /// A header with everything but the type, ids and numbers zero.
    pub fn new(kind: Kind, conn_id: u16, seq_nr: u16, ack_nr: u16) -> Header {
        Header {
            kind,
            conn_id,
            timestamp_us: 0,
            timestamp_diff_us: 0,
            wnd_size: 1 << 20,
            seq_nr,
            ack_nr,
            sack: None,
        }
    }

    /// Parses a packet's header and extensions; the payload starts at the returned offset.
    /// `None` for anything malformed (a short packet, a bad version or type, an extension that
    /// runs past the end).
    pub fn parse(p: &[u8]) -> Option<(Header, usize)> {
        if classify(p) != Datagram::Utp {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        let mut h = Header {
            kind: Kind::from_nibble(p[0] >> 4)?,
            conn_id: u16_at(2),
            timestamp_us: u32_at(4),
            timestamp_diff_us: u32_at(8),
            wnd_size: u32_at(12),
            seq_nr: u16_at(16),
            ack_nr: u16_at(18),
            sack: None,
        };
        let mut next = p[1];
        let mut at = HEADER_LEN;
        while next != 0 {
            let kind = next;
            next = *p.get(at)?;
            let len = usize::from(*p.get(at + 1)?);
            let body = p.get(at + 2..at + 2 + len)?;
            if kind == EXT_SACK {
                h.sack = Some(body.to_vec());
            }
            at += 2 + len;
        }
        Some((h, at))
    }

    /// Appends the header (and its SACK extension, if any) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(((self.kind as u8) << 4) | VERSION);
        out.push(if self.sack.is_some() { EXT_SACK } else { 0 });
        out.extend_from_slice(&self.conn_id.to_be_bytes());
        out.extend_from_slice(&self.timestamp_us.to_be_bytes());
        out.extend_from_slice(&self.timestamp_diff_us.to_be_bytes());
        out.extend_from_slice(&self.wnd_size.to_be_bytes());
        out.extend_from_slice(&self.seq_nr.to_be_bytes());
        out.extend_from_slice(&self.ack_nr.to_be_bytes());
        if let Some(mask) = &self.sack {
            out.push(0);
            out.push(mask.len() as u8);
            out.extend_from_slice(mask);
        }
    }

    /// The sequence numbers the SACK mask says arrived.
    pub fn sacked(&self) -> Vec<u16> {
        let Some(mask) = &self.sack else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, byte) in mask.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    out.push(self.ack_nr.wrapping_add(2 + (i * 8 + bit) as u16));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_krpc_from_utp_from_junk() {
        assert_eq!(
            classify(b"d1:ad2:id20:xxxxxxxxxxxxxxxxxxxxe1:q4:ping1:t2:aa1:y1:qe"),
            Datagram::Krpc
        );
        let mut syn = Vec::new();
        Header::new(Kind::Syn, 7, 1, 0).encode(&mut syn);
        assert_eq!(syn[0], 0x41);
        assert_eq!(classify(&syn), Datagram::Utp);
        for first in [0x01u8, 0x11, 0x21, 0x31, 0x41] {
            let mut p = syn.clone();
            p[0] = first;
            assert_eq!(classify(&p), Datagram::Utp, "{first:#x}");
        }
        // Version 0 or 2, type 5+, too short, empty: junk.
        for bad in [&[0x40u8; 20][..], &[0x42; 20], &[0x51; 20], &syn[..19], &[]] {
            assert_eq!(classify(bad), Datagram::Junk, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_with_and_without_selective_ack() {
        let mut h = Header::new(Kind::State, 0xbeef, 100, 65535);
        h.timestamp_us = 1;
        h.timestamp_diff_us = 2;
        h.wnd_size = 3;
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(Header::parse(&out), Some((h.clone(), HEADER_LEN)));
        h.sack = Some(vec![0b0000_0101, 0, 0, 0x80]);
        let mut out = Vec::new();
        h.encode(&mut out);
        out.extend_from_slice(b"payload");
        let (back, at) = Header::parse(&out).unwrap();
        assert_eq!(back, h);
        assert_eq!(&out[at..], b"payload");
        // ack 65535 wraps: bits 0 and 2 are seq 1 and 3, bit 31 is seq 32.
        assert_eq!(back.sacked(), [1, 3, 32]);
    }

    #[test]
    fn extensions_running_past_the_end_are_refused() {
        let mut h = Header::new(Kind::Data, 1, 1, 1);
        h.sack = Some(vec![0xff; 4]);
        let mut out = Vec::new();
        h.encode(&mut out);
        for cut in HEADER_LEN..out.len() {
            assert_eq!(Header::parse(&out[..cut]), None, "cut at {cut}");
        }
        // An unknown extension is skipped; a chain that never ends is refused.
        let mut p = Vec::new();
        Header::new(Kind::Data, 1, 1, 1).encode(&mut p);
        p[1] = 9;
        p.extend_from_slice(&[0, 2, 0xaa, 0xbb]);
        assert_eq!(Header::parse(&p).map(|(_, at)| at), Some(HEADER_LEN + 4));
        p[HEADER_LEN] = 9;
        assert_eq!(Header::parse(&p), None);
    }
}
