//! The node's ed25519 identity: its libp2p peer id and the key that signs its posts.
//!
//! The key lives in `<data-dir>/identity.key` in libp2p's protobuf key encoding, mode
//! 0600. It is created on first use, written to a temporary file and linked into place
//! so a crash never leaves half a key; an existing file is never overwritten, even when
//! it cannot be read — losing a key would lose the authorship of every post made
//! with it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aidmesh_proto::{AuthorKey, SigningKey};
use libp2p::identity::{Keypair, PeerId, PublicKey};

/// Problems loading or creating the identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key file exists but could not be read.
    #[error("cannot read identity key {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file does not hold a key; it is left as it is.
    #[error("identity key {path} is corrupt ({reason}); it was left untouched — restore it from a backup, or move it away to create a new identity")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The new key could not be written.
    #[error("cannot write identity key {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The node's keypair, in the two forms it is used in.
#[derive(Clone)]
pub struct Identity {
    keypair: Keypair,
    signing: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh random identity (not saved anywhere).
    pub fn generate() -> Self {
        Self::from_keypair(Keypair::generate_ed25519()).unwrap_or_else(|_| unreachable_ed25519())
    }

    /// An identity from a 32-byte ed25519 secret (for tests and tools).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let mut bytes = secret;
        let keypair =
            Keypair::ed25519_from_bytes(&mut bytes).unwrap_or_else(|_| unreachable_ed25519());
        Self { keypair, signing }
    }

    fn from_keypair(keypair: Keypair) -> Result<Self, String> {
        let ed = keypair
            .clone()
            .try_into_ed25519()
            .map_err(|_| "not an ed25519 key".to_string())?;
        let secret: [u8; 32] = ed
            .secret()
            .as_ref()
            .try_into()
            .map_err(|_| "bad ed25519 secret length".to_string())?;
        Ok(Self {
            keypair,
            signing: SigningKey::from_bytes(&secret),
        })
    }

    /// Loads the identity at `path`, creating it (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        match std::fs::read(path) {
            Ok(bytes) => Self::decode(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(Error::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self, Error> {
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let keypair = Keypair::from_protobuf_encoding(bytes).map_err(|e| corrupt(e.to_string()))?;
        let identity = Self::from_keypair(keypair).map_err(corrupt)?;
        warn_if_readable_by_others(path);
        Ok(identity)
    }

    fn create(path: &Path) -> Result<Self, Error> {
        let write_err = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        let identity = Self::generate();
        let encoded = identity
            .keypair
            .to_protobuf_encoding()
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        let tmp = path.with_extension(format!("key.tmp-{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let result = (|| {
            let mut file = options.open(&tmp)?;
            file.write_all(&encoded)?;
            file.sync_all()?;
            // A hard link fails if the key appeared meanwhile: never replace a key.
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match result {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    // Make the new directory entry durable too.
                    if let Ok(d) = std::fs::File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                tracing::info!(peer_id = %identity.peer_id(), path = %path.display(), "created a new node identity");
                Ok(identity)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(path).map_err(|source| Error::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::decode(path, &bytes)
            }
            Err(source) => Err(write_err(source)),
        }
    }

    /// The libp2p keypair, for the swarm.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The key that signs this node's posts.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// This node's key as a post author.
    pub fn author(&self) -> AuthorKey {
        AuthorKey(self.signing.verifying_key().to_bytes())
    }
}

/// The peer id of a post's author (authors are ed25519 libp2p identities).
///
/// Built straight from the key bytes — an ed25519 peer id is the identity multihash of
/// the protobuf-encoded key, `08 01 12 20 ‖ key` — without decompressing the curve
/// point, which cost a quarter of the API's CPU when listing posts. It does not check
/// that the bytes are a valid key: stored posts were verified when they came in.
pub fn author_peer_id(author: &AuthorKey) -> Option<PeerId> {
    const PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    let mut bytes = [0u8; PREFIX.len() + 32];
    bytes[..PREFIX.len()].copy_from_slice(&PREFIX);
    bytes[PREFIX.len()..].copy_from_slice(&author.0);
    PeerId::from_bytes(&bytes).ok()
}

/// Most author texts [`author_text`] keeps; past that it starts over.
const AUTHOR_TEXTS: usize = 4096;

/// How a post's author is shown (API, CLI): its peer id in base58, or the key's
/// own text should it not make one.
///
/// Base58 is a long division over the 38 bytes, a few microseconds each: it was an
/// eighth of the API's CPU answering a list of 50 posts. Authors repeat, so the texts
/// of the last few thousand are kept (a bounded table, emptied when full, so a flood
/// of fresh keys costs only the division).
pub fn author_text(author: &AuthorKey) -> String {
    static TEXTS: std::sync::OnceLock<Mutex<HashMap<AuthorKey, Arc<str>>>> =
        std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(Mutex::default);
    let lock = || texts.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = lock().get(author) {
        return t.to_string();
    }
    let text: Arc<str> = author_peer_id(author)
        .map_or_else(|| author.to_string(), |p| p.to_string())
        .into();
    let mut texts = lock();
    if texts.len() >= AUTHOR_TEXTS {
        texts.clear();
    }
    texts.insert(*author, text.clone());
    text.to_string()
}

/// The post author behind a peer id, when the peer id embeds an ed25519 key.
pub fn peer_id_author(peer: &PeerId) -> Option<AuthorKey> {
    // Ed25519 peer ids are identity multihashes of the protobuf-encoded public key.
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    let public = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = public.try_into_ed25519().ok()?;
    Some(AuthorKey(ed.to_bytes()))
}

fn unreachable_ed25519() -> ! {
    // Keypair::generate_ed25519 and ed25519_from_bytes on 32 bytes only make ed25519
    // keys; reaching this is a bug in libp2p-identity, not bad input.
    panic!("libp2p produced a non-ed25519 key for an ed25519 request")
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "identity key is readable by other users; run chmod 600 on it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let a = Identity::load_or_create(&path).unwrap();
        let b = Identity::load_or_create(&path).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(a.author(), b.author());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn corrupt_key_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, b"not a key").unwrap();
        let err = Identity::load_or_create(&path).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
    }

    #[test]
    fn peer_id_and_author_convert_both_ways() {
        let id = Identity::from_secret([3u8; 32]);
        assert_eq!(author_peer_id(&id.author()), Some(id.peer_id()));
        for _ in 0..32 {
            let other = Identity::generate();
            let slow = libp2p::identity::ed25519::PublicKey::try_from_bytes(&other.author().0)
                .map(|k| PublicKey::from(k).to_peer_id())
                .unwrap();
            assert_eq!(author_peer_id(&other.author()), Some(slow));
            assert_eq!(peer_id_author(&slow), Some(other.author()));
        }
        assert_eq!(peer_id_author(&id.peer_id()), Some(id.author()));
    }

    #[test]
    fn author_texts_are_peer_ids_kept_or_not() {
        let id = Identity::from_secret([4u8; 32]);
        let text = id.peer_id().to_string();
        assert_eq!(author_text(&id.author()), text);
        assert_eq!(author_text(&id.author()), text, "from the table");
        // More authors than the table holds: it starts over, texts stay right.
        for n in 0..AUTHOR_TEXTS as u32 + 10 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&n.to_be_bytes());
            let author = AuthorKey(key);
            let expected =
                author_peer_id(&author).map_or_else(|| author.to_string(), |p| p.to_string());
            assert_eq!(author_text(&author), expected);
        }
        assert_eq!(author_text(&id.author()), text);
    }
}
