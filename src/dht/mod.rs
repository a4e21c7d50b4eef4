//! The mainline DHT (BEP 5, with BEP 32 for IPv6): a pure core (ids and the XOR metric, the KRPC
//! codec, the routing table, iterative lookups, tokens, the peer store) under a thin UDP shell.

pub mod id;
pub mod krpc;
pub mod lookup;
pub mod node;
pub mod persist;
pub mod store;
pub mod table;
pub mod token;
