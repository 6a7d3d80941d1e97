//! The request-response codec the node's own protocols share (`/aidmesh/sync/1`,
//! `/aidmesh/msg/1`): one message per stream, raw bytes read to the stream's end with
//! a hard size limit per direction. Decoding happens where a malformed message can be
//! held against its sender, not here.

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// Raw bytes in, raw bytes out: requests of at most `MAX_REQUEST` bytes, responses of
/// at most `MAX_RESPONSE`; a longer frame is an error, whatever the peer claims.
#[derive(Clone, Copy, Debug, Default)]
pub struct Frames<const MAX_REQUEST: usize, const MAX_RESPONSE: usize>;

async fn read_limited<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(max as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame over {max} bytes"),
        ));
    }
    Ok(buf)
}

async fn write_all_and_close<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: Vec<u8>,
) -> std::io::Result<()> {
    io.write_all(&bytes).await?;
    io.close().await
}

impl<const MAX_REQUEST: usize, const MAX_RESPONSE: usize> libp2p::request_response::Codec
    for Frames<MAX_REQUEST, MAX_RESPONSE>
{
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_limited(io, MAX_REQUEST).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_limited(io, MAX_RESPONSE).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        write_all_and_close(io, req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        write_all_and_close(io, res).await
    }
}
