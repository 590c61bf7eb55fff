//! The media server: calls whose media goes through Noom (a selective forwarding unit), on
//! str0m.
//!
//! Like str0m itself, nothing here but [`server`] and `port` does IO: datagrams and time go in,
//! datagrams to send and signalling to deliver come out, so that forwarding and negotiation are
//! tested by feeding them, with real ICE, DTLS and SRTP between real str0m peers and no socket.
//!
//! - [`router`]: one call: a peer connection per participant, the tracks each publishes, the
//!   tracks each receives, and the offers that tell a browser of tracks come and gone.
//! - `track`: one track: its layers, what each receiver wants of it, which packet goes to whom.
//! - `rewrite`: the numbers each receiver's copy of a track is sent with, so that it sees one
//!   unbroken stream across layer switches and packets left out.
//! - [`allocator`]: which layer of each track a receiver's bandwidth estimate allows.
//! - [`speakers`]: who is speaking, from the audio levels in the packets.
//! - [`demux`]: which call a datagram at the media port is for, before any router sees it.
//! - [`server`]: the IO around the routers: a task per call; `port`, the media port's socket,
//!   read and written in batches; `tcp`, media over TCP connections of the web port, for
//!   networks that drop UDP.
//! - Calls spanning nodes (cascading): [`relay`], what two nodes' media servers say to each other
//!   (pure); [`cascade`], their one connection per pair of nodes; the router's own `cascade`,
//!   people of other nodes as publishers without a connection.

pub mod allocator;
pub mod cascade;
pub mod demux;
mod port;
pub mod relay;
mod rewrite;
pub mod router;
pub mod server;
pub mod speakers;
mod tcp;
mod track;

pub use router::{CallRouter, MediaAddresses, ParticipantStats, RouterError, RouterOutput};
pub use server::{MediaError, MediaEvent, MediaServer};
pub use track::Wanted;
