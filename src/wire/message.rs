//! BEP 3 messages (and BEP 6's, BEP 5's `port`, BEP 10's extended, BEP 52's hash messages) and their
//! framing: a 4-byte big-endian length, an id byte, a payload. [`Codec`] turns buffered bytes into
//! [`Message`]s, refusing frames over the torrent's limit, bitfields of the wrong shape and `have`s
//! out of range; unknown ids that frame correctly are skipped, and so are `suggest`/`allowed fast` out
//! of range, and BEP 52's messages unless the codec is [`Codec::with_v2`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::hashes::{self, HashRequest, Hashes};
use super::WireError;
use crate::bitfield::Bitfield;
use crate::types::{BlockRef, BLOCK_LEN};

/// One peer wire message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A zero-length frame.
    KeepAlive,
    /// id 0.
    Choke,
    /// id 1.
    Unchoke,
    /// id 2.
    Interested,
    /// id 3.
    NotInterested,
    /// id 4: the sender has this piece (range-checked by the codec).
    Have(u32),
    /// id 5: the sender's pieces (shape-checked by the codec).
    Bitfield(Bitfield),
    /// id 6.
    Request { index: u32, begin: u32, length: u32 },
    /// id 7: a block; `data` shares the read buffer (no copy).
    Piece { index: u32, begin: u32, data: Bytes },
    /// id 8.
    Cancel { index: u32, begin: u32, length: u32 },
    /// id 9: the sender's DHT port (BEP 5).
    Port(u16),
    /// id 0x0D (BEP 6): the sender suggests this piece (range-checked).
    Suggest(u32),
    /// id 0x0E (BEP 6): the sender has every piece, instead of a bitfield.
    HaveAll,
    /// id 0x0F (BEP 6): the sender has no piece, instead of a bitfield.
    HaveNone,
    /// id 0x10 (BEP 6): the sender will not serve this request.
    Reject { index: u32, begin: u32, length: u32 },
    /// id 0x11 (BEP 6): the receiver may request this piece while choked (range-checked).
    AllowedFast(u32),
    /// id 20: a BEP 10 extended message (`id` 0 is the extended handshake).
    Extended { id: u8, payload: Bytes },
    /// id 21 (BEP 52): hashes of a file's Merkle tree wanted (shape-checked).
    HashRequest(HashRequest),
    /// id 22 (BEP 52): the hashes asked for, then their uncles (shape- and count-checked).
    Hashes(Hashes),
    /// id 23 (BEP 52): the sender will not serve this `hash request`.
    HashReject(HashRequest),
    /// Any other id, well framed, skipped.
    Unknown(u8),
}

impl Message {
    /// A `request` for `block`.
    pub fn request(block: BlockRef) -> Message {
        Message::Request {
            index: block.piece.get(),
            begin: block.offset,
            length: block.len,
        }
    }

    /// A `cancel` of `block`.
    pub fn cancel(block: BlockRef) -> Message {
        Message::Cancel {
            index: block.piece.get(),
            begin: block.offset,
            length: block.len,
        }
    }

    /// Appends the framed message to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let triple = |out: &mut BytesMut, id: u8, a: u32, b: u32, c: u32| {
            out.put_u32(13);
            out.put_u8(id);
            out.put_u32(a);
            out.put_u32(b);
            out.put_u32(c);
        };
        match self {
            Message::KeepAlive => out.put_u32(0),
            Message::Choke => simple(out, 0),
            Message::Unchoke => simple(out, 1),
            Message::Interested => simple(out, 2),
            Message::NotInterested => simple(out, 3),
            Message::Have(i) => with_index(out, 4, *i),
            Message::Bitfield(b) => {
                out.put_u32(1 + b.as_bytes().len() as u32);
                out.put_u8(5);
                out.put_slice(b.as_bytes());
            }
            Message::Request {
                index,
                begin,
                length,
            } => triple(out, 6, *index, *begin, *length),
            Message::Piece { index, begin, data } => {
                out.put_u32(9 + data.len() as u32);
                out.put_u8(7);
                out.put_u32(*index);
                out.put_u32(*begin);
                out.put_slice(data);
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => triple(out, 8, *index, *begin, *length),
            Message::Port(p) => {
                out.put_u32(3);
                out.put_u8(9);
                out.put_u16(*p);
            }
            Message::Suggest(i) => with_index(out, ids::SUGGEST, *i),
            Message::HaveAll => simple(out, ids::HAVE_ALL),
            Message::HaveNone => simple(out, ids::HAVE_NONE),
            Message::Reject {
                index,
                begin,
                length,
            } => triple(out, ids::REJECT, *index, *begin, *length),
            Message::AllowedFast(i) => with_index(out, ids::ALLOWED_FAST, *i),
            Message::Extended { id, payload } => {
                out.put_u32(2 + payload.len() as u32);
                out.put_u8(20);
                out.put_u8(*id);
                out.put_slice(payload);
            }
            Message::HashRequest(r) => hashes::encode_request(out, hashes::HASH_REQUEST, r),
            Message::Hashes(h) => hashes::encode_hashes(out, h),
            Message::HashReject(r) => hashes::encode_request(out, hashes::HASH_REJECT, r),
            Message::Unknown(id) => simple(out, *id),
        }
    }
}

fn simple(out: &mut BytesMut, id: u8) {
    out.put_u32(1);
    out.put_u8(id);
}

fn with_index(out: &mut BytesMut, id: u8, index: u32) {
    out.put_u32(5);
    out.put_u8(id);
    out.put_u32(index);
}

/// BEP 6 message ids.
mod ids {
    pub const SUGGEST: u8 = 0x0D;
    pub const HAVE_ALL: u8 = 0x0E;
    pub const HAVE_NONE: u8 = 0x0F;
    pub const REJECT: u8 = 0x10;
    pub const ALLOWED_FAST: u8 = 0x11;
}

/// Decodes one peer's stream for one torrent.
#[derive(Debug, Clone)]
pub struct Codec {
    /// The torrent's piece count; `None` before its metadata is known (a magnet link).
    pieces: Option<u32>,
    max_frame: u32,
    /// Whether BEP 52's hash messages are decoded (a v2 or hybrid torrent on a v2 connection).
    v2: bool,
}

/// Longest frame of anything but a bitfield: a 16 KiB block message, or a BEP 9 metadata piece with
/// its header inside a BEP 10 message (id byte, extension id, payload).
const MAX_MESSAGE_FRAME: u32 = {
    let metadata = 2 + super::ut_metadata::MAX_PAYLOAD_LEN as u32;
    let block = BLOCK_LEN + 9;
    if metadata > block {
        metadata
    } else {
        block
    }
};
/// The bitfield accepted before the piece count is known: 4 million pieces (a 64 TiB torrent at
/// 16 MiB pieces), read only to be ignored.
const MAX_UNKNOWN_BITFIELD: u32 = 512 * 1024;

impl Codec {
    /// A codec for a torrent of `pieces` pieces. The frame limit is the larger of the longest other
    /// message and this torrent's bitfield message: nothing legitimate is longer.
    pub fn new(pieces: u32) -> Codec {
        let bitfield = 1 + Bitfield::byte_len(pieces) as u32;
        Codec {
            pieces: Some(pieces),
            max_frame: MAX_MESSAGE_FRAME.max(bitfield),
            v2: false,
        }
    }

    /// This codec, decoding BEP 52's `hash request`, `hashes` and `hash reject` too (else skipped as
    /// unknown ids), its frame limit raised to the longest `hashes` message.
    pub fn with_v2(self) -> Codec {
        Codec {
            max_frame: self.max_frame.max(hashes::MAX_FRAME),
            v2: true,
            ..self
        }
    }

    /// A codec for a torrent whose metadata we are still fetching: `have` and `bitfield` cannot be
    /// checked yet and come out as [`Message::Unknown`], to be ignored.
    pub fn without_metadata() -> Codec {
        Codec {
            pieces: None,
            max_frame: MAX_MESSAGE_FRAME.max(1 + MAX_UNKNOWN_BITFIELD),
            v2: false,
        }
    }

    /// The longest frame this codec accepts.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Takes one whole message off the front of `buf`; `Ok(None)` when more bytes are needed. On an
    /// error the stream is unusable: drop the peer.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if len > self.max_frame {
            return Err(WireError::FrameTooLong {
                len,
                max: self.max_frame,
            });
        }
        if buf.len() < 4 + len as usize {
            buf.reserve(4 + len as usize - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        if len == 0 {
            return Ok(Some(Message::KeepAlive));
        }
        let mut frame = buf.split_to(len as usize);
        let id = frame.get_u8();
        let msg = match id {
            0..=9 => self.decode_base(id, len, frame)?,
            ids::SUGGEST..=ids::ALLOWED_FAST => self.decode_fast(id, len, frame)?,
            20 => {
                if len < 2 {
                    return Err(WireError::BadLength { id, len });
                }
                let ext = frame.get_u8();
                Message::Extended {
                    id: ext,
                    payload: frame.freeze(),
                }
            }
            hashes::HASH_REQUEST..=hashes::HASH_REJECT if self.v2 => {
                hashes::decode(id, len, frame)?
            }
            other => Message::Unknown(other),
        };
        Ok(Some(msg))
    }
}

impl Codec {
    /// A BEP 3 message (`id` 0 to 9) of frame length `len`, its id byte taken off `frame`. `have`
    /// and `bitfield` before the metadata (a magnet's) are skipped.
    fn decode_base(&self, id: u8, len: u32, mut frame: BytesMut) -> Result<Message, WireError> {
        let payload = len - 1;
        let want = |n: u32| {
            if payload == n {
                Ok(())
            } else {
                Err(WireError::BadLength { id, len })
            }
        };
        Ok(match id {
            0 => want(0).map(|_| Message::Choke)?,
            1 => want(0).map(|_| Message::Unchoke)?,
            2 => want(0).map(|_| Message::Interested)?,
            3 => want(0).map(|_| Message::NotInterested)?,
            4 | 5 if self.pieces.is_none() => Message::Unknown(id),
            4 => {
                want(4)?;
                let index = frame.get_u32();
                let pieces = self.pieces.unwrap_or(0);
                if index >= pieces {
                    return Err(WireError::HaveOutOfRange { index, pieces });
                }
                Message::Have(index)
            }
            5 => {
                // BEP 3 wants it once and first, but aria2 sends its bitfield again as it gets pieces,
                // and libtorrent sends its BEP 10 handshake first: any number, anywhere, is
                // accepted (the session merges them); the shape is what is checked.
                let pieces = self.pieces.unwrap_or(0);
                let b = Bitfield::from_bytes(&frame, pieces).ok_or(WireError::BadBitfield {
                    len: frame.len(),
                    pieces,
                })?;
                Message::Bitfield(b)
            }
            6 | 8 => {
                want(12)?;
                let (index, begin, length) = (frame.get_u32(), frame.get_u32(), frame.get_u32());
                if id == 6 {
                    Message::Request {
                        index,
                        begin,
                        length,
                    }
                } else {
                    Message::Cancel {
                        index,
                        begin,
                        length,
                    }
                }
            }
            7 => {
                if payload < 8 {
                    return Err(WireError::BadLength { id, len });
                }
                let (index, begin) = (frame.get_u32(), frame.get_u32());
                Message::Piece {
                    index,
                    begin,
                    data: frame.freeze(),
                }
            }
            _ => {
                want(2)?;
                Message::Port(frame.get_u16())
            }
        })
    }

    /// A BEP 6 message (`id` 0x0D to 0x11) of frame length `len`, its id byte taken off `frame`.
    /// `suggest` and `allowed fast` out of range (or before the metadata) are skipped.
    fn decode_fast(&self, id: u8, len: u32, mut frame: BytesMut) -> Result<Message, WireError> {
        let want = |n: u32| {
            if len - 1 == n {
                Ok(())
            } else {
                Err(WireError::BadLength { id, len })
            }
        };
        Ok(match id {
            ids::HAVE_ALL => want(0).map(|_| Message::HaveAll)?,
            ids::HAVE_NONE => want(0).map(|_| Message::HaveNone)?,
            ids::REJECT => {
                want(12)?;
                Message::Reject {
                    index: frame.get_u32(),
                    begin: frame.get_u32(),
                    length: frame.get_u32(),
                }
            }
            _ => {
                want(4)?;
                let index = frame.get_u32();
                match self.pieces {
                    Some(n) if index < n && id == ids::SUGGEST => Message::Suggest(index),
                    Some(n) if index < n => Message::AllowedFast(index),
                    _ => Message::Unknown(id),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
